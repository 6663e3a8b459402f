"""Source resolution for direct media: what FFmpeg should open, and whether it is live.

``resolve_direct`` turns what the user gave (a path, ``-``, an http(s)/rtmp/rtsp URL) into a
``MediaSource``. HTTP sources are probed first, through the egress proxy, so that a 404, an HTML
page, text, or a refused redirect is reported in one line before FFmpeg starts, and so that an HLS
playlist is recognised (live when its media playlist has no ``#EXT-X-ENDLIST``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit

import aiohttp

from .constants import PROBE_READ_BYTES, PROBE_TIMEOUT_S
from .egress import REFUSED_HEADER, EgressProxy
from .errors import NotMedia, SourceError, SourceNotFound, SourceUnreachable, UrlRefused
from .urlguard import NETWORK_SCHEMES, UrlGuard

SourceKind = Literal["file", "http", "hls", "rtmp", "rtsp", "stdin", "pulse", "browser"]
Headers = tuple[tuple[str, str], ...]
HLS_TYPES = ("application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl")


@dataclass(frozen=True)
class MediaSource:
    """What the decoder opens.

    Attributes:
        spec: what the user gave.
        url: what FFmpeg opens (a path, a URL, or ``-`` for stdin).
        kind: file, http (progressive), hls, rtmp, rtsp, stdin, pulse (a PulseAudio source,
            recorded by browser capture) or browser (a page that Chromium renders).
        live: arrives in real time; a stall is retried with backoff before giving up.
        network: FFmpeg must reach it through the egress proxy.
        reason: why it was resolved this way (shown in the session line).
        headers: HTTP request headers the media needs, sent by the probe and by FFmpeg: what yt-dlp
            says a site expects (its Referer, User-Agent, cookies), e.g. against hotlinking.
    """

    spec: str
    url: str
    kind: SourceKind
    live: bool
    network: bool
    reason: str
    headers: Headers = ()


@dataclass(frozen=True)
class ProbeResult:
    final_url: str
    status: int
    content_type: str
    head: bytes


async def resolve_direct(
    spec: str, guard: UrlGuard, proxy: EgressProxy, *, allow_local: bool = True, headers: Headers = ()
) -> MediaSource:
    """Resolve a path, ``-`` or URL to a MediaSource, or raise a SourceError saying why not.
    ``headers`` go with every HTTP request for it (the probe's here, FFmpeg's later)."""
    if spec == "-":
        if not allow_local:
            raise UrlRefused("reading from stdin is only possible from the command line")
        return MediaSource(spec, "-", "stdin", live=False, network=False, reason="standard input")
    scheme = urlsplit(spec).scheme.lower()
    if scheme in ("rtmp", "rtmps", "rtsp", "rtsps"):
        await guard.check_url(spec)
        kind: SourceKind = "rtmp" if scheme.startswith("rtmp") else "rtsp"
        return MediaSource(spec, spec, kind, live=True, network=True, reason=f"{scheme} stream")
    if scheme in ("http", "https"):
        await guard.check_url(spec)
        probe = await probe_http(spec, proxy, headers)
        source = classify_probe(spec, probe, await hls_is_live(probe, proxy, headers))
        return replace(source, headers=headers) if headers else source
    if scheme and len(scheme) > 1 and scheme not in NETWORK_SCHEMES:
        raise UrlRefused(f"unsupported URL scheme {scheme}: in {spec!r} (use http(s), rtmp(s), rtsp or a path)")
    if not allow_local:
        raise UrlRefused("local paths are only allowed from the command line")
    return _local_file(spec)


def _local_file(spec: str) -> MediaSource:
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceNotFound(f"no such file: {spec}")
    if path.is_dir():
        raise NotMedia(f"{spec} is a directory, not a media file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read {spec}: permission denied")
    return MediaSource(spec, str(path), "file", live=False, network=False, reason="local file")


def classify_probe(spec: str, probe: ProbeResult, hls_live: bool | None) -> MediaSource:
    """Decide what an HTTP answer is: HLS, progressive media, or not media at all."""
    ctype = probe.content_type
    head = probe.head.lstrip()
    if head.startswith(b"#EXTM3U") or ctype in HLS_TYPES:
        live = bool(hls_live)
        reason = "HLS playlist, live (no #EXT-X-ENDLIST)" if live else "HLS playlist, on demand"
        return MediaSource(spec, probe.final_url, "hls", live=live, network=True, reason=reason)
    if looks_like_html(ctype, head):
        raise NotMedia(f"expected audio or video at {spec} but got an HTML page ({ctype or 'no type'})")
    if ctype.startswith("text/") or ctype in ("application/json", "application/xml"):
        raise NotMedia(f"expected audio or video at {spec} but got text ({ctype})")
    return MediaSource(
        spec,
        probe.final_url,
        "http",
        live=False,
        network=True,
        reason=f"media over HTTP ({ctype or 'no type'})",
    )


def looks_like_html(ctype: str, head: bytes) -> bool:
    if ctype in ("text/html", "application/xhtml+xml"):
        return True
    lowered = head[:512].lower()
    return lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:256]


async def probe_http(url: str, proxy: EgressProxy, headers: Headers = ()) -> ProbeResult:
    """GET the first bytes of ``url`` through the egress proxy, following checked redirects."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as http,
            http.get(url, proxy=proxy.url, allow_redirects=True, max_redirects=8, headers=dict(headers)) as resp,
        ):
            if REFUSED_HEADER in resp.headers:
                raise UrlRefused(resp.headers[REFUSED_HEADER])
            if resp.status in (404, 410):
                raise SourceNotFound(f"HTTP {resp.status} {resp.reason} for {url}")
            if resp.status >= 400:
                if resp.status == 502:
                    raise SourceUnreachable((await resp.text(errors="replace")).strip() or f"HTTP 502 for {url}")
                raise SourceError(f"HTTP {resp.status} {resp.reason} for {url}")
            head = await resp.content.read(PROBE_READ_BYTES)
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            return ProbeResult(str(resp.url), resp.status, ctype, head)
    except SourceError:
        raise
    except aiohttp.ClientHttpProxyError as e:
        if e.status == 403 and proxy.last_refusal():
            raise UrlRefused(proxy.last_refusal() or "refused") from e
        raise SourceUnreachable(f"cannot connect to {url}: proxy answered {e.status}") from e
    except aiohttp.TooManyRedirects as e:
        raise SourceError(f"too many redirects from {url}") from e
    except aiohttp.ClientResponseError as e:
        raise SourceError(f"HTTP error from {url}: {e.status} {e.message}") from e
    except aiohttp.ClientConnectorCertificateError as e:
        raise SourceUnreachable(f"TLS certificate of {url} is not valid: {e.certificate_error}") from e
    except (aiohttp.ClientError, OSError) as e:
        refusal = proxy.last_refusal()
        if refusal and "refused" in refusal:
            raise UrlRefused(refusal) from e
        raise SourceUnreachable(f"cannot connect to {url}: {e}") from e
    except TimeoutError as e:
        raise SourceUnreachable(f"no answer from {url} within {PROBE_TIMEOUT_S:.0f} s") from e


async def hls_is_live(probe: ProbeResult, proxy: EgressProxy, headers: Headers = ()) -> bool | None:
    """Whether an HLS playlist is live; a master playlist is judged by its first variant."""
    text = probe.head.decode("utf-8", "replace")
    if not text.lstrip().startswith("#EXTM3U"):
        return None
    if "#EXT-X-STREAM-INF" in text:
        lines = text.splitlines()
        variant = next(
            (lines[i + 1].strip() for i, ln in enumerate(lines[:-1]) if ln.startswith("#EXT-X-STREAM-INF")),
            "",
        )
        if not variant:
            return None
        try:
            sub = await probe_http(urljoin(probe.final_url, variant), proxy, headers)
        except SourceError:
            return None
        text = sub.head.decode("utf-8", "replace")
    if len(probe.head) >= PROBE_READ_BYTES and "#EXT-X-ENDLIST" not in text:
        return None if "#EXT-X-PLAYLIST-TYPE:VOD" in text else True
    return "#EXT-X-ENDLIST" not in text and "#EXT-X-PLAYLIST-TYPE:VOD" not in text


__all__ = [
    "Headers",
    "MediaSource",
    "ProbeResult",
    "classify_probe",
    "hls_is_live",
    "looks_like_html",
    "probe_http",
    "resolve_direct",
]
