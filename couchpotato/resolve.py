"""Source resolution: which capture path a source takes (``--mode auto|direct|browser``).

- ``direct``: FFmpeg reads the media. A path, ``-``, an RTMP/RTSP URL or an HTTP URL of media is
  opened as it is (``source.resolve_direct``); an HTML page is handed to yt-dlp, and the media URL
  it finds (YouTube, Twitch, C-SPAN, Vimeo, a plain ``<video>``/``<audio>``) is opened instead. A
  page yt-dlp cannot resolve is an error that suggests ``--mode browser``.
- ``browser``: an http(s) page is rendered by Chromium and its sound recorded.
- ``auto`` (default): ``direct`` where it works, else ``browser`` for an HTML page.

The URL guard applies on every path: to the URL given (and, through the egress proxy, to every
redirect of the probe), to every request yt-dlp makes (it is run with ``--proxy`` set to the
egress proxy), to the media URL yt-dlp resolved (checked, then probed through the proxy), and
to everything Chromium loads (see browser/chromium.py).

The choice and why it was made end up in ``MediaSource.kind`` and ``MediaSource.reason``, and so
in the session line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from .browser.constants import YTDLP_SOCKET_TIMEOUT_S, YTDLP_TIMEOUT_S
from .browser.process import collect_lines, stop_group
from .egress import EgressProxy
from .errors import ConfigError, NotMedia, Unresolved, UrlRefused
from .source import (
    Headers,
    MediaSource,
    classify_probe,
    hls_is_live,
    looks_like_html,
    probe_http,
    resolve_direct,
)
from .urlguard import UrlGuard

log = logging.getLogger(__name__)

Mode = Literal["auto", "direct", "browser"]
MODES: tuple[Mode, ...] = ("auto", "direct", "browser")


@dataclass(frozen=True)
class YtdlpMedia:
    """What yt-dlp found on a page."""

    url: str
    extractor: str
    is_live: bool
    title: str = ""
    headers: Headers = ()  # what the site expects with the media requests (yt-dlp's http_headers)


async def resolve_source(
    spec: str,
    guard: UrlGuard,
    proxy: EgressProxy,
    *,
    mode: Mode = "auto",
    allow_local: bool = True,
    ytdlp_timeout_s: float = YTDLP_TIMEOUT_S,
) -> MediaSource:
    """Resolve ``spec`` to what to capture and how, or raise a SourceError saying why not."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r} (choose auto, direct or browser)")
    scheme = urlsplit(spec).scheme.lower()
    if mode == "browser":
        if scheme not in ("http", "https"):
            raise UrlRefused(f"--mode browser needs an http(s) page URL, not {spec!r}")
        await guard.check_url(spec)
        return MediaSource(
            spec, spec, "browser", live=True, network=True, reason="page rendered in Chromium (--mode browser)"
        )
    if scheme not in ("http", "https"):
        return await resolve_direct(spec, guard, proxy, allow_local=allow_local)

    await guard.check_url(spec)
    probe = await probe_http(spec, proxy)
    if not looks_like_html(probe.content_type, probe.head.lstrip()):
        source = classify_probe(spec, probe, await hls_is_live(probe, proxy))
        return source if mode == "direct" else replace(source, reason=f"auto: media FFmpeg can open, {source.reason}")

    page = probe.final_url
    try:
        found = await ytdlp_resolve(page, proxy.url, timeout_s=ytdlp_timeout_s)
        media = await _media_behind(spec, found, guard, proxy)
    except Unresolved as e:
        if mode == "direct":
            raise NotMedia(
                f"expected audio or video at {spec} but got an HTML page ({probe.content_type or 'no type'}) "
                f"yt-dlp cannot resolve ({e}); try --mode browser"
            ) from e
        return MediaSource(
            spec,
            page,
            "browser",
            live=True,
            network=True,
            reason=f"auto: HTML page without media FFmpeg or yt-dlp can open (yt-dlp: {e}), rendered in Chromium",
        )
    prefix = "auto: " if mode == "auto" else ""
    return replace(media, reason=f"{prefix}page resolved by yt-dlp ({found.extractor}), {media.reason}")


async def _media_behind(spec: str, found: YtdlpMedia, guard: UrlGuard, proxy: EgressProxy) -> MediaSource:
    """The MediaSource of the media URL yt-dlp found: checked by the guard, then probed through the proxy."""
    try:
        await guard.check_url(found.url)
    except UrlRefused as e:
        raise UrlRefused(f"yt-dlp resolved {spec} to a refused address: {e}") from e
    try:
        media = await resolve_direct(found.url, guard, proxy, allow_local=False, headers=found.headers)
    except NotMedia as e:
        raise Unresolved(f"what it found is not media: {e}") from e
    return replace(media, spec=spec, live=media.live or found.is_live)


def ytdlp_argv(url: str, proxy_url: str) -> list[str]:
    """yt-dlp as a child of this interpreter: metadata only, every request through ``proxy_url``."""
    return [
        sys.executable,
        "-m",
        "yt_dlp",
        "--ignore-config",
        "--no-cache-dir",
        "--no-playlist",
        "--playlist-items",
        "1",
        "--dump-single-json",
        "--no-warnings",
        "--no-progress",
        "--format",
        "bestaudio/best",
        "--proxy",
        proxy_url,
        "--socket-timeout",
        str(YTDLP_SOCKET_TIMEOUT_S),
        "--",
        url,
    ]


async def ytdlp_resolve(url: str, proxy_url: str, *, timeout_s: float = YTDLP_TIMEOUT_S) -> YtdlpMedia:
    """Ask yt-dlp for the media URL behind a page; raises ``Unresolved`` when it finds none."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        proc = await asyncio.create_subprocess_exec(
            *ytdlp_argv(url, proxy_url),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as e:
        raise Unresolved(f"cannot run yt-dlp: {e}") from e
    assert proc.stdout is not None and proc.stderr is not None
    errors: deque[str] = deque(maxlen=20)
    err_task = asyncio.ensure_future(collect_lines(proc.stderr, errors, "yt-dlp"))
    try:
        async with asyncio.timeout(timeout_s):
            out = await proc.stdout.read()
            await proc.wait()
            await err_task
    except TimeoutError as e:
        raise Unresolved(f"no answer within {timeout_s:.0f} s") from e
    finally:
        await stop_group(proc, grace_s=1.0)
        err_task.cancel()
        await asyncio.gather(err_task, return_exceptions=True)
    if proc.returncode != 0:
        raise Unresolved(_ytdlp_complaint(errors))
    try:
        info = json.loads(out)
    except ValueError as e:
        raise Unresolved("unreadable answer") from e
    return _pick(info)


def _ytdlp_complaint(lines: deque[str]) -> str:
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    last = (errors or list(lines) or ["no reason given"])[-1]
    last = last.removeprefix("ERROR:").strip()
    if "No module named yt_dlp" in last:
        return "yt-dlp is not installed"
    return " ".join(last.split())[:200]


def _pick(info: Any) -> YtdlpMedia:
    """The one media URL to capture from yt-dlp's JSON (first entry of a playlist, audio preferred)."""
    if not isinstance(info, dict):
        raise Unresolved("unreadable answer")
    if info.get("_type") == "playlist":
        entries = [e for e in info.get("entries") or [] if isinstance(e, dict)]
        if not entries:
            raise Unresolved("a playlist without entries")
        info = entries[0]
    url = info.get("url")
    chosen: dict[str, Any] = info
    formats = info.get("requested_formats") or []
    if not url and formats:
        audio = [f for f in formats if isinstance(f, dict) and f.get("acodec") not in (None, "none")]
        chosen = (audio or formats)[0]
        url = chosen.get("url")
    if not isinstance(url, str) or not url:
        raise Unresolved("no media URL in its answer")
    extractor = str(info.get("extractor_key") or info.get("extractor") or "yt-dlp").lower()
    headers = request_headers(chosen.get("http_headers") or info.get("http_headers"))
    return YtdlpMedia(url, extractor, bool(info.get("is_live")), str(info.get("title") or ""), headers)


# Headers that describe a connection or a body, not what the site wants to see: never forwarded.
_NOT_FORWARDED = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "proxy-authorization", "proxy-connection", "upgrade"}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def request_headers(raw: Any) -> Headers:
    """yt-dlp's ``http_headers``, as headers safe to send: names that are HTTP tokens, values
    without control characters (no header can be smuggled into FFmpeg's ``-headers``)."""
    if not isinstance(raw, dict):
        return ()
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str) or not _TOKEN.match(name):
            continue
        if name.lower() in _NOT_FORWARDED or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            continue
        out.append((name, value.strip()))
    return tuple(out)


__all__ = [
    "MODES",
    "Mode",
    "Unresolved",
    "YtdlpMedia",
    "request_headers",
    "resolve_source",
    "ytdlp_argv",
    "ytdlp_resolve",
]
