"""Generated speech and ways to serve it: files over HTTP, and live HLS made by ffmpeg ``-re``."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CORPUS = Path(__file__).with_name("corpus.txt")
# engine:voice, rotated across paragraphs
VOICES: tuple[str, ...] = ("espeak:en-us", "flite:slt", "espeak:en-gb", "flite:awb", "flite:rms", "flite:kal")


def corpus_paragraphs() -> list[str]:
    """The benchmark corpus: news-style paragraphs written for this project."""
    return [p.strip() for p in CORPUS.read_text(encoding="utf-8").split("\n\n") if p.strip()]


def _run(argv: Sequence[str]) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def synthesize(text: str, out: Path, voice: str = "espeak:en-us", *, rate_wpm: int = 165) -> Path:
    """Speak ``text`` into a 16 kHz mono WAV at ``out`` with espeak-ng or flite."""
    engine, _, name = voice.partition(":")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        txt = Path(tmp) / "text.txt"
        txt.write_text(text, encoding="utf-8")
        if engine == "espeak":
            _run(["espeak-ng", "-v", name or "en-us", "-s", str(rate_wpm), "-f", str(txt), "-w", str(raw)])
        elif engine == "flite":
            _run(["flite", "-voice", name or "kal", "-f", str(txt), "-o", str(raw)])
        else:
            raise ValueError(f"unknown TTS engine {engine!r}")
        _run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-ar", "16000", "-ac", "1", str(out)])
    return out


@dataclass(frozen=True)
class Programme:
    """A generated programme: its audio file, the text spoken, and its length."""

    path: Path
    text: str
    duration_s: float


@functools.cache
def _cached_programme(paragraphs: int, pause_s: float, folder: str) -> Programme:
    paras = corpus_paragraphs()[:paragraphs]
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, text in enumerate(paras):
        speech = synthesize(text, out / f"para{i}.wav", VOICES[i % len(VOICES)])
        padded = out / f"para{i}_pad.wav"
        _run(["ffmpeg", "-v", "error", "-y", "-i", str(speech), "-af", f"apad=pad_dur={pause_s}", str(padded)])
        parts.append(padded)
    listing = out / "list.txt"
    listing.write_text("".join(f"file '{p.name}'\n" for p in parts), encoding="utf-8")
    path = out / "programme.wav"
    _run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(path),
        ]
    )
    return Programme(path, "\n\n".join(paras), media_duration(path))


def build_programme(folder: Path, paragraphs: int | None = None, *, pause_s: float = 1.2) -> Programme:
    """Paragraphs of the corpus in rotating voices with pauses between them, as one WAV."""
    n = len(corpus_paragraphs()) if paragraphs is None else paragraphs
    return _cached_programme(n, pause_s, str(folder))


def media_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip())


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class declares it as an instance attribute
        **SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        ".wav": "audio/wav",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RangeHandler(_QuietHandler):
    """Also answers ``Range: bytes=a-b`` with 206, as real web servers do (FFmpeg seeks with it)."""

    def send_head(self) -> Any:
        spec = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not spec.startswith("bytes=") or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first_s, _, last_s = spec[len("bytes=") :].split(",")[0].strip().partition("-")
        try:
            first = int(first_s) if first_s else max(0, size - int(last_s))
            last = min(int(last_s), size - 1) if (first_s and last_s) else size - 1
        except ValueError:
            return super().send_head()
        if first >= size or first > last:
            self.send_error(416, "Requested Range Not Satisfiable")
            return None
        with path.open("rb") as f:
            f.seek(first)
            body = f.read(last - first + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


class _HotlinkGuard(SimpleHTTPRequestHandler):
    """Media only for requests that come from this site's own pages (a ``Referer`` on this host),
    as CDNs that refuse hotlinking do: anything but an HTML page is 403 without one."""

    def send_head(self) -> Any:
        referer = urlsplit(self.headers.get("Referer", ""))
        if not self.path.split("?")[0].endswith(".html") and referer.netloc != self.headers.get("Host", ""):
            self.send_error(403, "Hotlinking refused: no Referer from this site")
            return None
        return super().send_head()


@contextlib.contextmanager
def serve_directory(
    folder: Path, host: str = "127.0.0.1", *, ranges: bool = False, hotlink_guard: bool = False
) -> Iterator[str]:
    """Serve ``folder`` over HTTP in a thread; yields the base URL (no trailing slash). With
    ``ranges``, byte-range requests are answered (206) as most web servers do; without, every request
    gets the whole file (a server that cannot seek). With ``hotlink_guard``, only HTML pages are
    served to requests without a ``Referer`` from the site itself."""
    base: type[SimpleHTTPRequestHandler] = _RangeHandler if ranges else _QuietHandler
    if hotlink_guard:
        base = type("_GuardedHandler", (_HotlinkGuard, base), {})
    handler = functools.partial(base, directory=str(folder))
    server = ThreadingHTTPServer((host, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _TurnsHandler(_QuietHandler):
    """``_QuietHandler`` that answers one path with the next of a series of pages on each request."""

    turns_path = ""
    turns: Sequence[str] = ()
    served: list[str]

    def do_GET(self) -> None:
        if urlsplit(self.path).path != self.turns_path:
            return super().do_GET()
        body = self.turns[min(len(self.served), len(self.turns) - 1)].encode()
        self.served.append(self.headers.get("User-Agent", ""))
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve_in_turns(folder: Path, name: str, pages: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder``, and at ``/<name>`` the first of ``pages`` to the first request, the second
    to the second… (the last one from then on): a page that breaks the first browsers that open it.
    Yields the page's URL and the User-Agent of each request for it, in order."""
    served: list[str] = []
    attrs = {"turns_path": f"/{name}", "turns": tuple(pages), "served": served}
    handler = functools.partial(type("_Turns", (_TurnsHandler,), attrs), directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}", served
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def hls_live(
    audio: Path, folder: Path, *, segment_s: float = 1.0, window: int = 6, wait_s: float = 15.0
) -> Iterator[Path]:
    """A live HLS stream of ``audio``: ffmpeg ``-re`` writes a sliding playlist of ``window`` segments
    into ``folder``.

    Yields the playlist path once it lists a first segment; the playlist gets ``#EXT-X-ENDLIST`` when
    the audio ends. ffmpeg is killed on exit.
    """
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is needed for a live HLS stream")
    folder.mkdir(parents=True, exist_ok=True)
    playlist = folder / "live.m3u8"
    proc = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-re",
            "-i",
            str(audio),
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "hls",
            "-hls_time",
            str(segment_s),
            "-hls_list_size",
            str(window),
            "-hls_flags",
            "independent_segments",
            "-hls_segment_filename",
            str(folder / "seg%05d.ts"),
            str(playlist),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + wait_s
        while not (playlist.exists() and ".ts" in playlist.read_text(errors="replace")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ffmpeg did not start the HLS stream")
            time.sleep(0.05)
        yield playlist
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


__all__ = [
    "Programme",
    "build_programme",
    "corpus_paragraphs",
    "hls_live",
    "media_duration",
    "serve_directory",
    "synthesize",
]
