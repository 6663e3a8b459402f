"""Headers yt-dlp reports for a media URL: which are forwarded, and how FFmpeg gets them."""

from __future__ import annotations

from couchpotato.decoder import ffmpeg_argv
from couchpotato.resolve import _pick, request_headers
from couchpotato.source import MediaSource

UA = "Mozilla/5.0 (X11; Linux x86_64)"


def test_safe_headers_are_kept_and_unsafe_ones_dropped() -> None:
    raw = {
        "User-Agent": UA,
        "Referer": "https://example.org/live",
        "Cookie": "session=abc",
        "Host": "evil.example",  # describes the connection: never forwarded
        "X-Injected": "a\r\nX-Smuggled: 1",  # a header smuggled in a value
        "Bad Name": "x",  # not an HTTP token
        "X-Number": 5,  # not a string
    }
    assert request_headers(raw) == (
        ("User-Agent", UA),
        ("Referer", "https://example.org/live"),
        ("Cookie", "session=abc"),
    )
    assert request_headers(None) == () and request_headers(["User-Agent"]) == ()


def test_the_chosen_formats_headers_win_over_the_pages() -> None:
    info = {
        "extractor_key": "Generic",
        "http_headers": {"Referer": "https://example.org/page"},
        "requested_formats": [
            {"url": "https://cdn.example.org/v.mp4", "acodec": "none", "http_headers": {"Referer": "video"}},
            {"url": "https://cdn.example.org/a.m4a", "acodec": "mp4a", "http_headers": {"Referer": "audio"}},
        ],
    }
    found = _pick(info)
    assert found.url == "https://cdn.example.org/a.m4a" and found.headers == (("Referer", "audio"),)


def test_ffmpeg_gets_the_user_agent_and_the_other_headers_before_its_input() -> None:
    headers = (("User-Agent", UA), ("Referer", "https://example.org/"), ("Cookie", "s=1"))
    source = MediaSource(
        "p", "https://cdn.example.org/a.m4a", "http", live=False, network=True, reason="", headers=headers
    )
    argv = ffmpeg_argv(source)
    i = argv.index("-i")
    assert argv[argv.index("-user_agent") + 1] == UA and argv.index("-user_agent") < i
    assert argv[argv.index("-headers") + 1] == "Referer: https://example.org/\r\nCookie: s=1\r\n"
    assert argv.index("-headers") < i
    plain = MediaSource("p", "https://cdn.example.org/a.m4a", "http", live=False, network=True, reason="")
    assert "-headers" not in ffmpeg_argv(plain) and "-user_agent" not in ffmpeg_argv(plain)
