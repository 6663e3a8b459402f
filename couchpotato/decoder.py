"""FFmpeg decoding of a MediaSource to 16 kHz mono PCM, read incrementally from a pipe.

``PcmDecoder`` is an async iterator of ``PcmChunk``: float32 samples and the media-clock position of
the first one, counted in samples from the start of the session. FFmpeg runs with an explicit argv
(no shell) in its own process group, reaches the network only through the egress proxy (and only by
the protocols the source needs), and is killed by process group when iteration stops.

Failures become one-line SourceErrors, classified from FFmpeg's stderr. When a live source stalls or
drops, FFmpeg is restarted with backoff; the media clock then jumps by the wall time that was lost,
so media time keeps tracking the live programme.

For HotPotato's swaps a decoder can also start a recorded source at a position (``start_s``: FFmpeg
seeks sample-accurately), start a live HLS stream further back in its live window
(``live_start_index``), and report the stream time of its first sample (``timestamps``: the PTS of
the first decoded frame, printed by an ``ashowinfo`` branch of the filter graph and read from
stderr, plus the input's start time): two decoders of one stream can then be placed on one clock
exactly. Error lines FFmpeg prints are counted as they come (``errors_total``, ``error_lines``) for
the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .constants import (
    FFMPEG_RW_TIMEOUT_US,
    LIVE_RECONNECT_ATTEMPTS,
    PCM_BYTES_PER_SAMPLE,
    PCM_READ_SAMPLES,
    RECONNECT_BACKOFF_S,
    SAMPLE_RATE_HZ,
    STALL_TIMEOUT_S,
)
from .errors import (
    NoAudioTrack,
    NotMedia,
    SourceError,
    SourceNotFound,
    SourceStalled,
    SourceUnreachable,
    UrlRefused,
)
from .pcm import decode_pcm16
from .source import MediaSource

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
NETWORK_PROTOCOLS = {
    "http": "http,https,tls,tcp,crypto,httpproxy",
    "hls": "http,https,tls,tcp,crypto,httpproxy,data",
    "rtmp": "rtmp,rtmps,rtmpt,tcp,tls",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
}


# A branch of the filter graph that prints the first decoded sample's timestamp (``ashowinfo`` logs at
# info level, hence ``-loglevel level+info`` with it: each line then says its level).
TIMESTAMP_GRAPH = "[0:a:0]asplit=2[pcm][probe];[probe]atrim=end_sample=1,ashowinfo,anullsink"
RECONNECT_CLOCK_WAIT_S = 5.0  # how long a reconnected run's stream time may take to show up
_PTS_RE = re.compile(r"ashowinfo.*\bpts_time:(-?[0-9.]+)")
_START_RE = re.compile(r"\bstart: (-?[0-9.]+)")
_LEVEL_RE = re.compile(r"\[(panic|fatal|error|warning|info|verbose|debug|trace)\]")
_ERROR_LEVELS = ("panic", "fatal", "error")
# Printed at error level but harmless for raw PCM (PulseAudio's timestamps jitter): not counted.
_BENIGN = ("non monotonically increasing dts",)


@dataclass(frozen=True, slots=True)
class PcmChunk:
    """Samples in [-1, 1] and the media-clock index of the first one."""

    start_sample: int
    samples: np.ndarray

    @property
    def start(self) -> float:
        return self.start_sample / SAMPLE_RATE_HZ

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.samples)


def ffmpeg_argv(
    source: MediaSource,
    *,
    realtime: bool = False,
    start_s: float | None = None,
    live_start_index: int | None = None,
    timestamps: bool = False,
) -> list[str]:
    """The FFmpeg command line that decodes ``source`` to s16le 16 kHz mono on stdout.

    ``start_s`` seeks a recorded source (input seeking, sample-accurate); ``live_start_index``
    starts a live HLS stream that many segments from the end of its window (negative) or from its
    start; ``timestamps`` prints the stream time of the first decoded sample on stderr."""
    argv = [FFMPEG, "-hide_banner", "-nostats", "-loglevel", "level+info" if timestamps else "error"]
    if source.kind != "stdin":
        argv.append("-nostdin")
    if realtime:
        argv.append("-re")
    if start_s is not None and start_s > 0:
        argv += ["-ss", f"{start_s:.6f}"]
    if live_start_index is not None and source.kind == "hls":
        argv += ["-live_start_index", str(live_start_index)]
    if source.headers and source.kind in ("http", "hls"):
        agent = next((v for k, v in source.headers if k.lower() == "user-agent"), None)
        rest = "".join(f"{k}: {v}\r\n" for k, v in source.headers if k.lower() != "user-agent")
        if agent:
            argv += ["-user_agent", agent]
        if rest:
            argv += ["-headers", rest]
    if source.kind in NETWORK_PROTOCOLS:
        argv += ["-protocol_whitelist", NETWORK_PROTOCOLS[source.kind]]
        if source.kind == "rtsp":
            argv += ["-timeout", str(FFMPEG_RW_TIMEOUT_US)]
        else:
            argv += ["-rw_timeout", str(FFMPEG_RW_TIMEOUT_US)]
    if source.kind == "pulse":
        argv += ["-f", "pulse", "-name", "couchpotato"]
    argv += ["-i", "pipe:0" if source.kind == "stdin" else source.url]
    if timestamps:
        argv += ["-filter_complex", TIMESTAMP_GRAPH, "-map", "[pcm]"]
    else:
        argv += ["-map", "0:a:0", "-vn", "-sn", "-dn"]
    argv += ["-ac", "1", "-ar", str(SAMPLE_RATE_HZ)]
    argv += ["-acodec", "pcm_s16le", "-f", "s16le", "pipe:1"]
    return argv


def classify_ffmpeg_error(stderr_lines: list[str], source: MediaSource, refusal: str | None) -> SourceError:
    """Turn FFmpeg's complaint into the one-line error a user should see."""
    text = "\n".join(stderr_lines)
    low = text.lower()
    where = source.spec
    if refusal and ("403" in low or "forbidden" in low or "error opening input" in low):
        return UrlRefused(refusal)
    if ("404" in low and "not found" in low) or "no such file or directory" in low:
        return SourceNotFound(f"not found: {where}")
    if "matches no streams" in low or "does not contain any stream" in low:
        return NoAudioTrack(f"no audio track in {where}")
    if "invalid data found when processing input" in low or "could not find codec parameters" in low:
        return NotMedia(f"not audio or video: {where} (FFmpeg found no media it can decode)")
    for needle in (
        "connection refused",
        "failed to resolve",
        "no route to host",
        "network is unreachable",
        "502 bad gateway",
        "connection reset",
        "end of file",
        "i/o error",
    ):
        if needle in low:
            return SourceUnreachable(f"cannot read {where}: {needle}")
    if "timed out" in low or "timeout" in low:
        return SourceStalled(f"{where} timed out")
    last = next((ln for ln in reversed(stderr_lines) if ln.strip()), "exited with an error")
    return SourceError(f"FFmpeg could not read {where}: {last.strip()}")


def nothing_decoded(stderr_lines: list[str], source: MediaSource) -> SourceError:
    """FFmpeg ended well but decoded no audio at all from a recorded source."""
    low = "\n".join(stderr_lines).lower()
    if "moov atom not found" in low or "partial file" in low or "stream ends prematurely" in low:
        return NotMedia(
            f"no audio decoded from {source.spec}: the file's index comes after its media and the server "
            "does not allow seeking (no byte-range support); serve it with range requests or as HLS"
        )
    last = next((ln.strip() for ln in reversed(stderr_lines) if ln.strip()), "")
    return NotMedia(f"no audio decoded from {source.spec}" + (f": {last}" if last else ""))


@dataclass
class PcmDecoder:
    """Decodes a MediaSource with FFmpeg; iterate it for PcmChunks.

    Attributes:
        source: what to open.
        proxy_url: the egress proxy every network request of FFmpeg goes through.
        realtime: read a recorded file at 1x speed (FFmpeg ``-re``), like a live source.
        stall_timeout_s: no PCM for this long is a stall.
        duration_s: stop after this much media time.
        refusal: callable returning the proxy's last refusal, to name it when FFmpeg fails on it.
        env: extra environment for FFmpeg (``PULSE_SERVER`` for a pulse source, a session tag).
        start_s: start a recorded source at this position; the media clock starts there too.
        live_start_index: start a live HLS stream at this segment of its window (see ffmpeg_argv).
        timestamps: learn the stream time of the first sample (``clock``, ``wait_clock``).
        clock: ``(media sample, stream time in seconds)`` of the current run's first sample, once known.
        errors_total: error lines FFmpeg printed (all runs); error_lines: the recent ones, with
            the wall time each was read.
    """

    source: MediaSource
    proxy_url: str | None = None
    realtime: bool = False
    stall_timeout_s: float = STALL_TIMEOUT_S
    duration_s: float | None = None
    reconnect_attempts: int = LIVE_RECONNECT_ATTEMPTS
    refusal: Callable[[], str | None] | None = None
    env: Mapping[str, str] | None = None
    start_s: float | None = None
    live_start_index: int | None = None
    timestamps: bool = False
    media_epoch: float | None = None
    samples_read: int = 0
    reconnects: int = 0
    clock: tuple[int, float] | None = None
    errors_total: int = 0
    error_lines: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20), repr=False)
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _clock_known: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def running(self) -> bool:
        """Whether an FFmpeg process is running now (False between a failure and its restart)."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        """FFmpeg's pid while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def first_sample(self) -> int:
        """Media sample of the first chunk (``start_s`` into the source, else 0)."""
        return round(self.start_s * SAMPLE_RATE_HZ) if self.start_s else 0

    async def wait_clock(self, timeout_s: float) -> tuple[int, float] | None:
        """The stream time of the first sample (``clock``), waiting up to ``timeout_s`` for FFmpeg to
        print it; None without ``timestamps`` or if it never came."""
        if not self.timestamps:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._clock_known.wait()
        return self.clock

    async def __aiter__(self) -> AsyncIterator[PcmChunk]:
        limit = None if self.duration_s is None else int(self.duration_s * SAMPLE_RATE_HZ)
        next_sample = self.first_sample
        if limit is not None:
            limit += next_sample
        attempt = 0  # reconnects since audio last flowed
        previous: tuple[int, float] | None = None  # (media sample, stream time) of the last run's clock
        while True:
            try:
                # aclosing: whoever stops reading this decoder stops FFmpeg now, not when collected
                async with contextlib.aclosing(self._run_once(next_sample)) as run:
                    skip = -1  # samples of this run already delivered by the last one; -1: not known yet
                    async for samples in run:
                        if skip < 0:
                            skip, next_sample = await self._place_run(previous, next_sample)
                        if skip:
                            n = min(skip, len(samples))
                            samples, skip = samples[n:], skip - n
                            if not len(samples):
                                continue
                        if limit is not None:
                            samples = samples[: max(0, limit - next_sample)]
                        if self.media_epoch is None:
                            self.media_epoch = time.time() - (next_sample + len(samples)) / SAMPLE_RATE_HZ
                        attempt = 0
                        chunk = PcmChunk(next_sample, samples)
                        next_sample = self.samples_read = chunk.end_sample
                        yield chunk
                        if limit is not None and next_sample >= limit:
                            return
                return
            except SourceError as e:
                if not self.source.live or self.media_epoch is None:
                    raise
                if attempt >= self.reconnect_attempts:
                    if attempt == 0:
                        raise
                    raise type(e)(f"{e} (gave up after {attempt} reconnects)") from e
                delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                self.reconnects += 1
                log.warning("live source %s: %s; reconnecting in %.0f s", self.source.spec, e, delay)
                previous = self.clock or previous
                await asyncio.sleep(delay)
                if previous is None:
                    # Without stream time, live media time follows the wall clock across the outage.
                    next_sample = max(next_sample, int((time.time() - self.media_epoch) * SAMPLE_RATE_HZ))

    async def _place_run(self, previous: tuple[int, float] | None, next_sample: int) -> tuple[int, int]:
        """Where a reconnected live run's audio goes: ``(samples to drop, media sample of the first
        kept one)``. By stream time when both runs report it: a live HLS stream restarts a few
        segments back into its window, so what was delivered already is dropped (not transcribed
        twice), and a part the outage missed moves media time on by its length."""
        if previous is None or not self.timestamps:
            return 0, next_sample
        clock = await self.wait_clock(RECONNECT_CLOCK_WAIT_S)
        if clock is None:
            log.warning("live source %s: no stream time after reconnecting; media time follows the wall clock",
                        self.source.spec)  # fmt: skip
            assert self.media_epoch is not None
            return 0, max(next_sample, int((time.time() - self.media_epoch) * SAMPLE_RATE_HZ))
        delivered_to = previous[1] + (next_sample - previous[0]) / SAMPLE_RATE_HZ  # stream time
        offset = round((clock[1] - delivered_to) * SAMPLE_RATE_HZ)  # < 0: a replay; > 0: missed audio
        self.clock = (next_sample + offset, clock[1])
        if offset < 0:
            replayed_s = -offset / SAMPLE_RATE_HZ
            log.info("live source %s: %.2f s replayed after reconnecting, dropped", self.source.spec, replayed_s)
            return -offset, next_sample
        if offset > 0:
            log.warning("live source %s: %.2f s missed while reconnecting", self.source.spec, offset / SAMPLE_RATE_HZ)
        return 0, next_sample + offset

    async def _run_once(self, first_sample: int = 0) -> AsyncGenerator[np.ndarray, None]:
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        if self.source.network and self.proxy_url:
            env["http_proxy"] = self.proxy_url
        env.update(self.env or {})
        argv = ffmpeg_argv(
            self.source,
            realtime=self.realtime,
            start_s=self.start_s if first_sample == self.first_sample else None,
            live_start_index=self.live_start_index,
            timestamps=self.timestamps,
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=None if self.source.kind == "stdin" else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise SourceError("ffmpeg is not installed (apt install ffmpeg)") from e
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        errors: deque[str] = deque(maxlen=40)
        self.clock = None
        self._clock_known.clear()
        err_task = asyncio.ensure_future(self._collect(proc.stderr, errors, first_sample))
        block = PCM_READ_SAMPLES * PCM_BYTES_PER_SAMPLE
        carry = b""
        decoded = False
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
                    # that arrives as the read completes, and the read loop would then run forever.
                    async with asyncio.timeout(self.stall_timeout_s):
                        data = await proc.stdout.read(block)
                except TimeoutError:
                    raise SourceStalled(
                        f"{self.source.spec} stalled: no audio for {self.stall_timeout_s:.0f} s"
                    ) from None
                if not data:
                    break
                data = carry + data
                usable = len(data) - len(data) % PCM_BYTES_PER_SAMPLE
                carry = data[usable:]
                if usable:
                    decoded = True
                    yield decode_pcm16(data[:usable])
            rc = await proc.wait()
            await err_task
            if rc < 0 and not errors:
                raise SourceError(f"FFmpeg was killed (signal {-rc}) while reading {self.source.spec}")
            if rc != 0:
                refusal = self.refusal() if self.refusal else None
                raise classify_ffmpeg_error(list(errors), self.source, refusal)
            if not decoded and not self.source.live and first_sample == 0:
                raise nothing_decoded(list(errors), self.source)
        finally:
            await _terminate(proc)
            err_task.cancel()
            await asyncio.gather(err_task, return_exceptions=True)
            await _drain(proc)
            self._proc = None

    async def _collect(self, stream: asyncio.StreamReader, into: deque[str], first_sample: int) -> None:
        """FFmpeg's stderr: error lines into ``into`` (and the error counters); with ``timestamps``,
        the input's start time and the first frame's PTS, which give ``clock``."""
        start = 0.0
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").rstrip()
            if not text:
                continue
            if self.timestamps:
                level = _LEVEL_RE.search(text)
                if self.clock is None and (m := _START_RE.search(text)) and "Duration:" in text:
                    start = float(m.group(1))
                if self.clock is None and (m := _PTS_RE.search(text)):
                    # Input seeking shifts timestamps by the seek: the first frame then reads ~0.
                    seek = self.start_s if (self.start_s and first_sample == self.first_sample) else 0.0
                    self.clock = (first_sample, start + seek + float(m.group(1)))
                    self._clock_known.set()
                    continue
                if level is None or level.group(1) not in _ERROR_LEVELS:
                    log.debug("ffmpeg: %s", text)
                    continue
            into.append(text)
            log.debug("ffmpeg: %s", text)
            if not any(b in text for b in _BENIGN):
                self.errors_total += 1
                self.error_lines.append((time.time(), text))


async def _drain(proc: asyncio.subprocess.Process) -> None:
    """Read FFmpeg's pipes to their end once it has exited: a pipe nobody read any more (its reader
    paused, full) would otherwise never see EOF and stay open."""
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await stream.read()


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """Stop FFmpeg and anything it spawned: its whole process group.

    Its stdout is read away meanwhile: a reader that stopped early leaves the pipe full (FFmpeg
    blocked writing, asyncio's reading paused), and ``Process.wait`` returns only once every pipe
    has reached its end, so without it the wait never ends."""
    if proc.returncode is not None:
        return
    discard = asyncio.ensure_future(_discard(proc.stdout)) if proc.stdout is not None else None
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    finally:
        if discard is not None:
            discard.cancel()
            await asyncio.gather(discard, return_exceptions=True)


async def _discard(stream: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        while await stream.read(PCM_READ_SAMPLES * PCM_BYTES_PER_SAMPLE):
            pass


__all__ = ["PcmChunk", "PcmDecoder", "classify_ffmpeg_error", "ffmpeg_argv"]
