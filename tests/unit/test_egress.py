"""The egress proxy and the HTTP probe, against a real local server (loopback is allowlisted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from couchpotato.egress import EgressProxy
from couchpotato.errors import NotMedia, SourceNotFound, UrlRefused
from couchpotato.source import probe_http, resolve_direct
from couchpotato.urlguard import UrlGuard

LOOPBACK = UrlGuard.from_allowlist("127.0.0.0/8")


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    async def media(_: web.Request) -> web.Response:
        return web.Response(body=b"RIFF....WAVEfmt ", content_type="audio/wav")

    async def to_metadata(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def to_private(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.11.12.13/a.wav")

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><html><body>hi</body></html>", content_type="text/html")

    async def live(_: web.Request) -> web.Response:
        return web.Response(
            text="#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n",
            content_type="application/vnd.apple.mpegurl",
        )

    app = web.Application()
    app.router.add_get("/a.wav", media)
    app.router.add_get("/meta", to_metadata)
    app.router.add_get("/private", to_private)
    app.router.add_get("/page", page)
    app.router.add_get("/live.m3u8", live)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_probe_reads_media_through_the_proxy(origin: str) -> None:
    async with EgressProxy(LOOPBACK) as proxy:
        probe = await probe_http(origin + "/a.wav", proxy)
        assert probe.content_type == "audio/wav" and probe.head.startswith(b"RIFF")
        assert proxy.connections >= 1


@pytest.mark.parametrize("path", ["/meta", "/private"])
async def test_a_redirect_to_a_private_address_is_refused(origin: str, path: str) -> None:
    async with EgressProxy(LOOPBACK) as proxy:
        with pytest.raises(UrlRefused, match="refused"):
            await probe_http(origin + path, proxy)


async def test_proxy_refuses_connect_to_loopback_without_allowlist() -> None:
    async with EgressProxy(UrlGuard()) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
        await writer.drain()
        head = await reader.read(1024)
        writer.close()
        assert head.startswith(b"HTTP/1.1 403") and b"X-CouchPotato-Refused" in head
        assert proxy.last_refusal() and "loopback" in proxy.last_refusal()  # type: ignore[operator]


async def test_proxy_forwards_plain_http_to_allowed_hosts(origin: str) -> None:
    async with (
        EgressProxy(LOOPBACK) as proxy,
        aiohttp.ClientSession() as http,
        http.get(origin + "/a.wav", proxy=proxy.url) as resp,
    ):
        assert resp.status == 200 and (await resp.read()).startswith(b"RIFF")


async def test_resolution_of_pages_playlists_and_missing_files(origin: str) -> None:
    async with EgressProxy(LOOPBACK) as proxy:
        with pytest.raises(NotMedia, match="HTML page"):
            await resolve_direct(origin + "/page", LOOPBACK, proxy)
        with pytest.raises(SourceNotFound, match="404"):
            await resolve_direct(origin + "/missing.wav", LOOPBACK, proxy)
        live = await resolve_direct(origin + "/live.m3u8", LOOPBACK, proxy)
        assert live.kind == "hls" and live.live
        media = await resolve_direct(origin + "/a.wav", LOOPBACK, proxy)
        assert media.kind == "http" and not media.live
        with pytest.raises(UrlRefused):
            await resolve_direct(origin + "/a.wav", UrlGuard(), proxy)
