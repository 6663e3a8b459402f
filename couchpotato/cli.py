"""``couchpotato transcribe SOURCE``: a live transcript on stdout.

Errors are one line on stderr and a non-zero exit (1: the source or the model failed; 2: bad usage
or configuration; 130: interrupted), never a traceback unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from . import __version__
from .asr import AsrOptions, FasterWhisperEngine
from .capture import CaptureOptions, capture_events
from .constants import DEFAULT_ASR_WORKERS, DEFAULT_LANGUAGE, STALL_TIMEOUT_S
from .corrections import Corrections
from .errors import ConfigError, CouchPotatoError, UsageError
from .formats import FORMATS, Writer
from .health import NO_AUDIO_TIMEOUT_S, HealthSample
from .pipeline import Pipeline, PipelineOptions
from .records import EndEvent, PartialEvent, SessionEvent
from .resolve import MODES
from .segmenter import LATENCY_PROFILES, SegmenterOptions
from .settings import CoreSettings

log = logging.getLogger("couchpotato")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="couchpotato", description="Live transcription of media URLs, files and streams.")
    p.add_argument("--version", action="version", version=f"couchpotato {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser(
        "transcribe",
        help="print a live transcript of SOURCE",
        description="Print a live transcript of SOURCE: a file, an http(s)/HLS/RTMP/RTSP URL, a web page "
        "(through yt-dlp or rendered in Chromium, see --mode), or - (stdin).",
    )
    t.add_argument("source", help="media file, URL, or - for standard input")
    t.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    t.add_argument("--realtime", action="store_true", help="read a recorded file at 1x, like a live source")
    t.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of media")
    t.add_argument(
        "--vocabulary",
        default="",
        metavar="WORDS",
        help='comma-separated names/terms, e.g. "Buttigieg,Klobuchar"',
    )
    t.add_argument("--corrections", metavar="FILE", help="TOML file of regex = replacement fixes")
    t.add_argument("--model", help="faster-whisper model name or directory (default: tiny.en, bundled)")
    t.add_argument(
        "--asr-workers",
        type=int,
        default=DEFAULT_ASR_WORKERS,
        metavar="N",
        help="segments transcribed at once",
    )
    t.add_argument("--language", default=DEFAULT_LANGUAGE, help="spoken language (default: en)")
    t.add_argument(
        "--latency",
        choices=tuple(LATENCY_PROFILES),
        default="balanced",
        help="balanced (default): segments of at most 4 s, each decoded with 8 s of lead-in; low: at most "
        "3 s, final words a little sooner for more CPU; efficient: cut in pauses, 4-9 s, half the CPU, "
        "final words later (benchmarks/results/accuracy.md, latency.md)",
    )
    t.add_argument(
        "--partials",
        action="store_true",
        help="interim text of the words being heard, replaced by the final text when their segment "
        "commits: 'partial' events in jsonl; on a terminal the text format rewrites the line in place "
        "(nothing extra when piped, nor in srt/vtt)",
    )
    t.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT_S,
        metavar="S",
        help="give up on a source silent this long",
    )
    t.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="auto: media directly, or through yt-dlp, else the page in a browser (default); "
        "direct: never a browser; browser: render the page in Chromium and record its sound",
    )
    t.add_argument(
        "--no-audio-timeout",
        type=float,
        default=NO_AUDIO_TIMEOUT_S,
        metavar="S",
        help="a page that makes no sound within S seconds of its start ends with no_audio "
        f"(default: {NO_AUDIO_TIMEOUT_S:.0f}); once it has made sound, silence is a pause, not an end",
    )
    t.add_argument(
        "--silence-timeout",
        type=float,
        metavar="S",
        help="end a page's capture (silence_timeout) after S seconds of silence following sound "
        "(default: off; a live event may pause for as long as it likes)",
    )
    t.add_argument(
        "--record-video",
        type=Path,
        metavar="PATH",
        help="keep an MP4 of the page's screen and sound at PATH (browser capture)",
    )
    t.add_argument("-q", "--quiet", action="store_true", help="no session line or progress on stderr")
    t.add_argument("-v", "--verbose", action="store_true", help="debug logging (and tracebacks) on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        print(f"couchpotato: error: {e} (see couchpotato transcribe --help)", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="couchpotato: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_transcribe(args, sys.stdout))
    except (ConfigError, UsageError) as e:
        print(f"couchpotato: error: {e}", file=sys.stderr)
        return 2
    except CouchPotatoError as e:
        print(f"couchpotato: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("couchpotato: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        return 0
    except Exception as e:  # the last line of defence: still one line
        if args.verbose:
            raise
        print(f"couchpotato: error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _validate(args: argparse.Namespace, model: str) -> None:
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if args.asr_workers < 1:
        raise UsageError("--asr-workers must be at least 1")
    if args.stall_timeout <= 0:
        raise UsageError("--stall-timeout must be positive")
    if args.no_audio_timeout <= 0:
        raise UsageError("--no-audio-timeout must be positive")
    if args.silence_timeout is not None and args.silence_timeout <= 0:
        raise UsageError("--silence-timeout must be positive")
    if args.record_video is not None:
        if args.mode == "direct":
            raise UsageError("--record-video records a page in the browser; it cannot be used with --mode direct")
        if not args.record_video.parent.is_dir():
            raise UsageError(f"--record-video: {args.record_video.parent} is not a directory")
    if model.endswith(".en") and args.language != "en":
        raise UsageError(f"model {model} only knows English; pick a multilingual model for --language {args.language}")


async def _transcribe(args: argparse.Namespace, out: TextIO) -> int:
    settings = CoreSettings.from_env()
    model = args.model or settings.asr_model()
    _validate(args, model)
    corrections = Corrections.load(args.corrections) if args.corrections else Corrections()
    vocabulary = tuple(v.strip() for v in args.vocabulary.split(",") if v.strip())
    engine = FasterWhisperEngine(model, workers=args.asr_workers)
    options = PipelineOptions(
        asr=AsrOptions(language=args.language, vocabulary=vocabulary),
        asr_workers=args.asr_workers,
        segmenter=SegmenterOptions.for_latency(args.latency),
        corrections=corrections,
        partials=args.partials,
    )
    capture = CaptureOptions(
        realtime=args.realtime,
        duration_s=args.duration,
        stall_timeout_s=args.stall_timeout,
        mode=args.mode,
        no_audio_timeout_s=args.no_audio_timeout,
        silence_timeout_s=args.silence_timeout,
        restart_broken_page=True,
        record_video=args.record_video,
        on_health=_HealthNotes(args.source, notice_s=args.no_audio_timeout, quiet=args.quiet, verbose=args.verbose),
    )

    pipeline = Pipeline(engine, options)
    writer = Writer(args.format)
    # partials of the text format: the line being heard, rewritten in place (grey) on a terminal
    live_line = args.partials and args.format == "text" and out.isatty()
    status = _Status(enabled=not args.quiet and sys.stderr.isatty() and not live_line, source=args.source)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    out.write(writer.header())
    end: EndEvent | None = None
    events = capture_events(args.source, engine, settings.guard(), capture, options, pipeline=pipeline)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, SessionEvent) and args.format != "jsonl" and not args.quiet:
                print(
                    f"couchpotato: session {event.session_id}: {event.source_kind} ({event.reason})",
                    file=sys.stderr,
                )
            if isinstance(event, SessionEvent) and args.record_video and event.source_kind != "browser":
                log.warning("--record-video applies to browser capture only; %s is captured directly", args.source)
            if isinstance(event, EndEvent):
                end = event
            text = writer.write(event)
            if live_line and isinstance(event, PartialEvent):
                out.write(f"\r\x1b[2K\x1b[90m{event.text}\x1b[0m")
                out.flush()
            elif text:
                status.clear()
                out.write(("\r\x1b[2K" if live_line else "") + text)
                out.flush()
            status.update(pipeline)
            if stop.is_set():
                break
    status.close()
    if end is not None and end.error:
        print(f"couchpotato: error: {end.error}", file=sys.stderr)
        return 1
    return 0


class _HealthNotes:
    """Health on stderr: every sample with ``-v``; without it (unless ``-q``), one line when a
    source that has made sound goes silent for ``notice_s`` (it is still captured) and one when its
    sound comes back."""

    def __init__(self, source: str, *, notice_s: float, quiet: bool, verbose: bool) -> None:
        self.source = source
        self.notice_s = notice_s
        self.quiet = quiet
        self.verbose = verbose
        self.noticed = False
        self.silent_s = 0.0

    def __call__(self, sample: HealthSample) -> None:
        if self.verbose:
            log.debug("health: %s", json.dumps(sample.to_dict(), separators=(",", ":")))
        if self.quiet:
            return
        if sample.status == "silent":
            self.silent_s = sample.silent_s
        if sample.status == "silent" and sample.heard_sound and sample.silent_s >= self.notice_s and not self.noticed:
            self.noticed = True
            _note(f"health silent: {self.source} has been silent for {sample.silent_s:.0f} s; still capturing")
        elif sample.status == "ok" and self.noticed:
            self.noticed = False
            _note(f"health ok: {self.source} makes sound again after {self.silent_s:.0f} s of silence")


def _note(line: str) -> None:
    sys.stderr.write("\r\x1b[2K" if sys.stderr.isatty() else "")
    print(f"couchpotato: {line}", file=sys.stderr, flush=True)


class _Status:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self, *, enabled: bool, source: str) -> None:
        self.enabled = enabled
        self.total = _duration(source) if enabled else None
        self._console = None
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    def update(self, pipeline: Pipeline) -> None:
        if self._console is None:
            return
        st = pipeline.stats
        total = f" of {self.total:.0f} s" if self.total else ""
        pct = f" ({100 * st.audio_s / self.total:.0f}%)" if self.total else ""
        line = f"{st.audio_s:.0f} s{total}{pct} · {st.committed} segments · {st.gaps} gaps"
        self._console.file.write("\r\x1b[2K" + line)
        self._console.file.flush()

    def clear(self) -> None:
        if self._console is not None:
            self._console.file.write("\r\x1b[2K")

    def close(self) -> None:
        self.clear()


def _duration(source: str) -> float | None:
    """Length of a local file, for the progress line (network sources show no total)."""
    if not Path(source).is_file():
        return None
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", source],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        return float(out) if out else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


if __name__ == "__main__":
    sys.exit(main())
