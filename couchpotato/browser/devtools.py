"""What the page is doing, asked of Chromium itself over the DevTools protocol on a private pipe.

A broken capture and a quiet page sound the same (silence) and look alike from outside (every
process alive). Chromium can say which: whether its page renders frames at all, and whether a media
element on it is playing. ``DevToolsPipe`` gives Chromium ``--remote-debugging-pipe``: it reads
commands on its fd 3 and writes answers on its fd 4, NUL-terminated JSON. Nothing listens on a
port, so neither the page nor anything else on the machine can reach it; only the process that
started Chromium holds the other ends.

``page_state()`` asks the page target (``Runtime.evaluate``) for:

- ``frame``: a ``requestAnimationFrame`` callback ran, i.e. the renderer produces frames (a page
  stuck before its first paint, or a renderer that hangs, never answers, and a timeout says so);
- ``painted``: the page has a ``first-paint`` entry;
- ``playing``: media elements playing audibly (not paused, not ended, not muted, volume above 0,
  their clock moving).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import BrowserError

log = logging.getLogger(__name__)

CHILD_READ_FD = 3  # Chromium reads commands here (``--remote-debugging-pipe``)
CHILD_WRITE_FD = 4  # and writes answers and events here
# Chromium is spawned behind this bash shim (dash takes only one-digit fds), which moves its ends
# of the pipes onto fds 3 and 4 and execs it (same pid). No Python runs between fork and exec: a
# ``preexec_fn`` makes CPython fork() instead of vfork(), and fork() runs OpenBLAS's atfork
# handler, which waits for BLAS threads that a concurrent ASR decode keeps busy: the spawn
# deadlocked (seen in the service's swap tests).
SHIM = 'exec 3<&"$1" 4>&"$2"; eval "exec $1<&- $2>&-"; shift 2; exec "$@"'
SHIM_FD_FLOOR = 10  # Chromium's ends are moved at or above this, clear of 3 and 4
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# One expression: frames, paint entries, audible media elements. ``awaitPromise`` waits for the
# next animation frame, which never comes from a renderer that does not render.
PAGE_STATE_JS = """
new Promise(resolve => requestAnimationFrame(() => {
  const media = [...document.querySelectorAll('audio,video')];
  const playing = media.filter(m => !m.paused && !m.ended && !m.muted && m.volume > 0 && m.currentTime > 0);
  resolve({
    painted: performance.getEntriesByType('paint').length > 0,
    playing: playing.length,
    media: media.length,
    ready: document.readyState,
  });
}))
"""


class DevToolsError(BrowserError):
    """Chromium's DevTools pipe did not answer, or answered with an error."""


@dataclass(frozen=True, slots=True)
class PageState:
    """What the page is doing (see the module docstring).

    Attributes:
        frame: the renderer ran an animation frame for this question.
        painted: the page has painted (a ``first-paint`` entry).
        playing: media elements playing audibly.
        media: media elements on the page.
        ready: ``document.readyState``.
    """

    frame: bool
    painted: bool
    playing: int
    media: int
    ready: str


class DevToolsPipe:
    """The two pipes of ``--remote-debugging-pipe``: create before spawning Chromium (spawn what
    ``spawn_args`` gives), ``await open()`` after, ``close()`` when Chromium is gone."""

    def __init__(self) -> None:
        self._cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads (its fd 3)
        self._out_r, self._out_w = os.pipe()  # Chromium writes, we read (its fd 4)
        self._cmd_r, self._out_w = _above(self._cmd_r), _above(self._out_w)
        self._writer: asyncio.WriteTransport | None = None
        self._read_transport: asyncio.ReadTransport | None = None
        self._opened = False
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._page_session: str | None = None
        self.closed = False

    def spawn_args(self, argv: Sequence[str]) -> tuple[list[str], tuple[int, int]]:
        """Chromium's ``argv`` behind ``SHIM``, and the fds the spawn must keep open (``pass_fds``):
        the shim puts them on 3 and 4, where ``--remote-debugging-pipe`` expects them."""
        fds = (self._cmd_r, self._out_w)
        return ["/bin/bash", "-c", SHIM, "chromium", str(fds[0]), str(fds[1]), *argv], fds

    async def open(self) -> None:
        """After the spawn: drop Chromium's ends here and start reading its answers."""
        os.close(self._cmd_r)
        os.close(self._out_w)
        self._opened = True
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES)
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(self._out_r, "rb", buffering=0)
        )
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(self._cmd_w, "wb", buffering=0))
        self._writer = transport
        self._reader_task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\0")
                except asyncio.IncompleteReadError:
                    return
                try:
                    message = json.loads(raw[:-1])
                except ValueError:
                    continue
                future = self._pending.pop(message.get("id", -1), None) if isinstance(message, dict) else None
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(DevToolsError("Chromium closed its DevTools pipe"))
            self._pending.clear()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, timeout_s: float
    ) -> dict[str, Any]:
        """Send one command; its ``result``, or ``DevToolsError`` (an error answer, no answer in time)."""
        if self._writer is None or self.closed:
            raise DevToolsError("the DevTools pipe is not open")
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self._writer.write(json.dumps(message).encode() + b"\0")
        try:
            answer = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise DevToolsError(f"{method}: no answer within {timeout_s:.0f} s") from None
        finally:
            self._pending.pop(ident, None)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error'].get('message', answer['error'])}")
        result = answer.get("result", {})
        return result if isinstance(result, dict) else {}

    async def page_state(self, timeout_s: float) -> PageState:
        """Ask the page what it is doing (see the module docstring); ``DevToolsError`` if it cannot say
        within ``timeout_s`` (a renderer that renders nothing does not answer)."""
        if self._page_session is None:
            targets = await self.call("Target.getTargets", timeout_s=timeout_s)
            pages = [t for t in targets.get("targetInfos", []) if t.get("type") == "page"]
            if not pages:
                raise DevToolsError("Chromium has no page")
            attached = await self.call(
                "Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}, timeout_s=timeout_s
            )
            self._page_session = str(attached["sessionId"])
        try:
            result = await self.call(
                "Runtime.evaluate",
                {"expression": PAGE_STATE_JS, "awaitPromise": True, "returnByValue": True},
                session=self._page_session,
                timeout_s=timeout_s,
            )
        except DevToolsError as e:
            if "session" in str(e).lower() or "target" in str(e).lower():
                self._page_session = None  # the tab was replaced (a crash, a navigation): attach again
            raise
        value = result.get("result", {}).get("value")
        if not isinstance(value, dict):
            raise DevToolsError(f"the page answered {result.get('exceptionDetails', result)!r}")
        return PageState(
            True, bool(value.get("painted")), int(value.get("playing", 0)), int(value.get("media", 0)),
            str(value.get("ready", "")),
        )  # fmt: skip

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        if self._read_transport is not None:
            self._read_transport.close()
            self._read_transport = None
        if not self._opened:  # Chromium never started: every end is still ours to close
            self._opened = True
            for fd in (self._cmd_r, self._cmd_w, self._out_r, self._out_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.closed = True


def _above(fd: int) -> int:
    """``fd`` moved to the lowest free fd at or above ``SHIM_FD_FLOOR`` (close-on-exec until the spawn
    passes it on), so the shim's moves onto 3 and 4 never overwrite one another."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, SHIM_FD_FLOOR)
    os.close(fd)
    return moved


__all__ = ["DevToolsError", "DevToolsPipe", "PageState"]
