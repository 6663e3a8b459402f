"""A guarded forward proxy: the only way captured media reaches the network.

FFmpeg (through ``http_proxy``), the source probe and, in browser capture, Chromium
(``--proxy-server``) send every request here. Each request names its destination (an absolute URI,
or ``CONNECT host:port`` for TLS); the proxy resolves it through the URL guard and connects to the
address that passed, so redirects, HLS segment URLs and a page's sub-resources are all checked, and
a second DNS answer cannot rebind a checked name to a private address.

One request per client connection (``Connection: close`` is forced upstream), so a kept-alive
connection cannot carry a second, unchecked destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import SourceError, UrlRefused
from .urlguard import UrlGuard

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 65_536
CONNECT_TIMEOUT_S = 15.0
PIPE_CHUNK_BYTES = 65_536
REFUSED_HEADER = "X-CouchPotato-Refused"
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


@dataclass
class EgressProxy:
    """An asyncio HTTP/CONNECT proxy that applies a UrlGuard to every destination.

    Use as an async context manager; ``url`` is then ``http://127.0.0.1:<port>``.
    """

    guard: UrlGuard
    host: str = "127.0.0.1"
    refusals: list[str] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def last_refusal(self) -> str | None:
        return self.refusals[-1] if self.refusals else None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_BYTES:
            return await _reply(writer, 431, "request head too large")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return await _reply(writer, 400, "malformed request line")
        headers = [ln for ln in lines[1:] if ln]
        if method.upper() == "CONNECT":
            host, _, port_s = target.rpartition(":")
            host = host.strip("[]")
            if not host or not port_s.isdigit():
                return await _reply(writer, 400, "CONNECT needs host:port")
            upstream = await self._open(writer, host, int(port_s))
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, *upstream)
            return
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            return await _reply(writer, 400, "only absolute http:// URIs and CONNECT are proxied")
        try:
            port = parts.port or 80
        except ValueError:
            return await _reply(writer, 400, "invalid port")
        upstream = await self._open(writer, parts.hostname, port)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        up_writer.write(request.encode("latin-1"))
        await up_writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _open(
        self, writer: asyncio.StreamWriter, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            addrs = await self.guard.resolve(host, port)
        except UrlRefused as e:
            self.refusals.append(str(e))
            log.warning("egress refused: %s", e)
            await _reply(writer, 403, str(e), refused=True)
            return None
        except SourceError as e:
            await _reply(writer, 502, str(e))
            return None
        last: Exception | None = None
        for ip in addrs:
            try:
                return await asyncio.wait_for(asyncio.open_connection(str(ip), port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as e:
                last = e
        await _reply(writer, 502, f"cannot connect to {host}:{port}: {last}")
        return None


async def _reply(writer: asyncio.StreamWriter, status: int, message: str, refused: bool = False) -> None:
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large"}.get(status, "Bad Gateway")
    body = (message + "\n").encode()
    extra = f"{REFUSED_HEADER}: {message}\r\n" if refused else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    writer.write(head.encode("utf-8", "replace") + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(PIPE_CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _pipe_both(
    c_reader: asyncio.StreamReader,
    c_writer: asyncio.StreamWriter,
    u_reader: asyncio.StreamReader,
    u_writer: asyncio.StreamWriter,
) -> None:
    try:
        down = asyncio.ensure_future(_pipe(u_reader, c_writer))
        up = asyncio.ensure_future(_pipe(c_reader, u_writer))
        # The exchange is over when the server is done; the client side may idle forever.
        await down
        up.cancel()
        await asyncio.gather(up, return_exceptions=True)
    finally:
        u_writer.close()
        with contextlib.suppress(Exception):
            await u_writer.wait_closed()


__all__ = ["REFUSED_HEADER", "EgressProxy"]
