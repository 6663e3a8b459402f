"""FFmpeg decoding of a MediaSource to 16 kHz mono PCM, read incrementally from a pipe.

``PcmDecoder`` is an async iterator of ``PcmChunk``: float32 samples and the media-clock position of
the first one, counted in samples from the start of the session. FFmpeg runs with an explicit argv
(no shell) in its own process group, reaches the network only through the egress proxy (and only by
the protocols the source needs), and is killed by process group when iteration stops.

Failures become one-line SourceErrors, classified from FFmpeg's stderr. When a live source stalls or
drops, FFmpeg is restarted with backoff; the media clock then jumps by the wall time that was lost,
so media time keeps tracking the live programme.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
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
from .source import MediaSource

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
NETWORK_PROTOCOLS = {
    "http": "http,https,tls,tcp,crypto,httpproxy",
    "hls": "http,https,tls,tcp,crypto,httpproxy,data",
    "rtmp": "rtmp,rtmps,rtmpt,tcp,tls",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
}


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


def ffmpeg_argv(source: MediaSource, *, realtime: bool = False) -> list[str]:
    """The FFmpeg command line that decodes ``source`` to s16le 16 kHz mono on stdout."""
    argv = [FFMPEG, "-hide_banner", "-nostats", "-loglevel", "error"]
    if source.kind != "stdin":
        argv.append("-nostdin")
    if realtime:
        argv.append("-re")
    if source.kind in NETWORK_PROTOCOLS:
        argv += ["-protocol_whitelist", NETWORK_PROTOCOLS[source.kind]]
        if source.kind == "rtsp":
            argv += ["-timeout", str(FFMPEG_RW_TIMEOUT_US)]
        else:
            argv += ["-rw_timeout", str(FFMPEG_RW_TIMEOUT_US)]
    if source.kind == "pulse":
        argv += ["-f", "pulse", "-name", "couchpotato"]
    argv += ["-i", "pipe:0" if source.kind == "stdin" else source.url]
    argv += ["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE_HZ)]
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
    """

    source: MediaSource
    proxy_url: str | None = None
    realtime: bool = False
    stall_timeout_s: float = STALL_TIMEOUT_S
    duration_s: float | None = None
    reconnect_attempts: int = LIVE_RECONNECT_ATTEMPTS
    refusal: Callable[[], str | None] | None = None
    env: Mapping[str, str] | None = None
    media_epoch: float | None = None
    samples_read: int = 0
    reconnects: int = 0
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Whether an FFmpeg process is running now (False between a failure and its restart)."""
        return self._proc is not None and self._proc.returncode is None

    async def __aiter__(self) -> AsyncIterator[PcmChunk]:
        limit = None if self.duration_s is None else int(self.duration_s * SAMPLE_RATE_HZ)
        next_sample = 0
        attempt = 0  # reconnects since audio last flowed
        while True:
            try:
                async for samples in self._run_once():
                    if limit is not None:
                        samples = samples[: max(0, limit - next_sample)]
                    if self.media_epoch is None:
                        self.media_epoch = time.time() - len(samples) / SAMPLE_RATE_HZ
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
                    raise type(e)(f"{e} (gave up after {attempt} reconnects)") from e
                delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                attempt += 1
                self.reconnects += 1
                log.warning("live source %s: %s; reconnecting in %.0f s", self.source.spec, e, delay)
                await asyncio.sleep(delay)
                # Live media time follows the wall clock across the outage.
                next_sample = max(next_sample, int((time.time() - self.media_epoch) * SAMPLE_RATE_HZ))

    async def _run_once(self) -> AsyncIterator[np.ndarray]:
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
        if self.source.network and self.proxy_url:
            env["http_proxy"] = self.proxy_url
        env.update(self.env or {})
        argv = ffmpeg_argv(self.source, realtime=self.realtime)
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
        err_task = asyncio.ensure_future(_collect(proc.stderr, errors))
        block = PCM_READ_SAMPLES * PCM_BYTES_PER_SAMPLE
        carry = b""
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
                    yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
            rc = await proc.wait()
            await err_task
            if rc != 0:
                refusal = self.refusal() if self.refusal else None
                raise classify_ffmpeg_error(list(errors), self.source, refusal)
        finally:
            await _terminate(proc)
            err_task.cancel()
            await asyncio.gather(err_task, return_exceptions=True)
            self._proc = None


async def _collect(stream: asyncio.StreamReader, into: deque[str]) -> None:
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            into.append(text)
            log.debug("ffmpeg: %s", text)


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """Stop FFmpeg and anything it spawned: its whole process group."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 3)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


__all__ = ["PcmChunk", "PcmDecoder", "classify_ffmpeg_error", "ffmpeg_argv"]
