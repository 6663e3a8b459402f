"""``--mode auto|direct|browser``: which path a source takes, and why, and the URL guard on each path."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from couchpotato.asr import FasterWhisperEngine
from couchpotato.capture import Capture, CaptureOptions
from couchpotato.egress import EgressProxy
from couchpotato.errors import NotMedia, UrlRefused
from couchpotato.resolve import Mode, Unresolved, ytdlp_resolve
from couchpotato.testing import serve_directory
from couchpotato.urlguard import UrlGuard
from tests.browser.conftest import GUARD, Site, assert_released, capture_page, requires_browser

pytestmark = [pytest.mark.e2e, requires_browser]


@pytest.mark.parametrize(
    ("path", "mode", "kind", "reason"),
    [
        ("speech_a.wav", "auto", "http", "auto: media FFmpeg can open, media over HTTP (audio/wav)"),
        ("video.html", "auto", "http", "auto: page resolved by yt-dlp (html5mediaembed), media over HTTP"),
        ("script_b.html", "auto", "browser", "auto: HTML page without media FFmpeg or yt-dlp can open (yt-dlp: "),
        ("video.html", "direct", "http", "page resolved by yt-dlp (html5mediaembed), media over HTTP"),
        ("video.html", "browser", "browser", "page rendered in Chromium (--mode browser)"),
    ],
)
async def test_each_source_takes_its_path(site: Site, path: str, mode: Mode, kind: str, reason: str) -> None:
    async with Capture(f"{site.url}/{path}", GUARD, CaptureOptions(mode=mode)) as cap:
        assert cap.source is not None
        assert cap.source.kind == kind
        assert cap.source.reason.startswith(reason), cap.source.reason
        assert (cap.browser is not None) == (kind == "browser")
        if kind == "http" and path.endswith(".html"):
            assert cap.source.url == f"{site.url}/clip.mp4", "yt-dlp's media URL is what FFmpeg opens"
        info = cap.info()
        assert (info.kind, info.reason) == (cap.source.kind, cap.source.reason), "the session line says it"


async def test_direct_mode_refuses_a_page_only_a_browser_can_play(site: Site) -> None:
    with pytest.raises(NotMedia, match=r"HTML page .* yt-dlp cannot resolve .*; try --mode browser$"):
        async with Capture(f"{site.url}/script_b.html", GUARD, CaptureOptions(mode="direct")):
            pass


async def test_browser_mode_needs_a_page_url(site: Site) -> None:
    with pytest.raises(UrlRefused, match="--mode browser needs an http"):
        async with Capture(str(site.folder / "speech_a.wav"), GUARD, CaptureOptions(mode="browser")):
            pass


async def test_a_page_found_through_yt_dlp_is_transcribed_directly(site: Site, engine: FasterWhisperEngine) -> None:
    from couchpotato.testing import wer
    from tests.browser.conftest import TEXT_A

    run = await capture_page(f"{site.url}/video.html", engine, CaptureOptions())
    assert run.source_kind == "http" and "yt-dlp" in run.reason
    assert not run.error and wer(TEXT_A, run.text) <= 0.15, run.text
    assert run.resources is None and run.health, "direct capture has health samples too"
    assert set(run.health[0].alive) == {"ffmpeg"} and max(s.rms_dbfs for s in run.health) > -40


# --- the URL guard on the yt-dlp and browser paths ---------------------------------------------


class _Hits(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"hit"
        self.send_response(200)
        self.send_header("Content-Type", "image/gif" if "pixel" in self.path else "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def private_listener() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.2 that records every request it gets: the address pages must not reach."""
    hits: list[str] = []
    handler = type("Hits", (_Hits,), {"hits": hits})
    try:
        server = ThreadingHTTPServer(("127.0.0.2", 0), handler)
    except OSError as e:
        pytest.skip(f"cannot listen on 127.0.0.2 here: {e}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def _write_pages(folder: Path, private: str) -> None:
    # Every way a page can make the browser fetch something: an image, a script's fetch, a
    # navigation in an iframe, a WebSocket (CONNECT through the proxy).
    (folder / "reach.html").write_text(
        f"""<!doctype html><html><body>
<img src="{private}/pixel.gif">
<iframe src="{private}/frame"></iframe>
<script>
fetch("{private}/fetch", {{mode: "no-cors"}}).catch(() => {{}});
try {{ new WebSocket("{private.replace("http", "ws")}/ws"); }} catch (e) {{}}
</script></body></html>""",
        encoding="utf-8",
    )
    (folder / "points_private.html").write_text(
        f'<!doctype html><html><body><video src="{private}/clip.mp4"></video></body></html>', encoding="utf-8"
    )


@pytest.mark.parametrize("allow_private", [False, True], ids=["blocked", "control-allowed"])
async def test_a_page_cannot_make_the_browser_reach_a_private_address(
    tmp_path: Path, private_listener: tuple[str, list[str]], allow_private: bool
) -> None:
    private, hits = private_listener
    _write_pages(tmp_path, private)
    guard = UrlGuard.from_allowlist("127.0.0.1/32,127.0.0.2/32" if allow_private else "127.0.0.1/32")
    with serve_directory(tmp_path) as url:
        async with Capture(f"{url}/reach.html", guard, CaptureOptions(mode="browser")) as cap:
            assert cap.browser is not None and cap.proxy is not None
            proxy = cap.proxy
            await _page_tried(proxy, hits)
            await asyncio.sleep(2)  # let every other request of the page arrive too
            resources = await cap.browser.resources()
    if allow_private:
        # The control: with 127.0.0.2 allowed, the same page does reach the listener, so the
        # listener and the page work and the blocked case below can fail.
        assert {"/pixel.gif", "/fetch", "/frame"} <= set(hits), hits
    else:
        assert hits == [], f"the page reached 127.0.0.2: {hits}"
        assert any("refused to connect to 127.0.0.2" in r for r in proxy.refusals), proxy.refusals
    assert_released(resources)


async def _page_tried(proxy: EgressProxy, hits: list[str]) -> None:
    """Returns once the page has tried to reach 127.0.0.2: refused by the proxy, or served."""
    for _ in range(100):  # 20 s
        if hits or any("127.0.0.2" in r for r in proxy.refusals):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the page never tried to reach 127.0.0.2: did it load?")


async def test_media_url_resolved_by_yt_dlp_is_checked_by_the_guard(
    tmp_path: Path, private_listener: tuple[str, list[str]]
) -> None:
    private, hits = private_listener
    _write_pages(tmp_path, private)
    with (
        serve_directory(tmp_path) as url,
        pytest.raises(UrlRefused, match=r"yt-dlp resolved .* to a refused address: refused to connect to 127\.0\.0\.2"),
    ):
        async with Capture(f"{url}/points_private.html", GUARD, CaptureOptions(mode="direct")):
            pass
    assert hits == []


async def test_yt_dlp_fetches_go_through_the_egress_proxy(site: Site) -> None:
    page = f"{site.url}/video.html"
    async with EgressProxy(GUARD) as proxy:
        found = await ytdlp_resolve(page, proxy.url)
        assert found.url == f"{site.url}/clip.mp4"
        assert proxy.connections >= 1
    # A proxy whose guard refuses loopback: yt-dlp cannot fetch the page, which proves its requests
    # go through the proxy (directly, 127.0.0.1 would answer).
    async with EgressProxy(UrlGuard()) as refusing:
        with pytest.raises(Unresolved, match="403"):
            await ytdlp_resolve(page, refusing.url)
        assert any("127.0.0.1" in r for r in refusing.refusals), refusing.refusals
