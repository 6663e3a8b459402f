"""Health signals of a capture, from its first second: the record HotPotato's supervisor consumes.

``HealthMonitor`` watches the PCM stream of a capture as it flows. For every second of media it
emits a ``HealthSample``: the audio level (RMS, dBFS) of that second, the PCM bytes received and
their rate over wall time, how long the audio has been silent, and whether each process of the
capture (Chromium, FFmpeg, Xvfb) is alive.

Silence is judged differently before and after the first sound:

- Before it, ``no_audio_timeout_s`` applies: a page silent from its start for that long ends the
  capture with ``NoAudio`` (status ``no_audio``): autoplay blocked, a dead player, a page with
  nothing to play is reported as such, not transcribed into an empty transcript.
- After it, silence is a health state, not an end: status ``silent`` with its length in
  ``silent_s`` (a live event pauses: a break, a speaker walking up, a feed being fixed). Only
  ``silence_timeout_s``, when set (off by default), ends the capture after that much silence,
  with ``SilenceTimeout``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .browser.errors import NoAudio, SilenceTimeout
from .constants import PCM_BYTES_PER_SAMPLE, SAMPLE_RATE_HZ
from .decoder import PcmChunk
from .errors import SerializationError
from .records import WIRE_VERSION

SILENCE_DBFS = -60.0  # a second whose RMS is below this is silent (digital silence is -120)
NO_AUDIO_TIMEOUT_S = 30.0  # default: a page silent this long is reported no_audio
HEALTH_HISTORY = 120  # samples kept (seconds)
FLOOR_DBFS = -120.0

HealthStatus = Literal["ok", "silent", "no_audio", "dead"]


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One second of a capture's health.

    Attributes:
        source: what is captured (the spec the user gave).
        media_s: media time at the end of the second this sample describes.
        rms_dbfs: audio level of that second (``FLOOR_DBFS`` for digital silence).
        bytes_total: PCM bytes received since the capture started.
        bytes_per_s: PCM bytes received per second of wall time since the previous sample.
        silent_s: seconds of silence up to now (0 when this second was audible).
        alive: whether each process of the capture is running, by name.
        status: ``ok``; ``silent`` (quiet: before the first sound, not yet for the no-audio timeout;
            after it, for any length, ``silent_s`` says how long); ``no_audio`` (silent from the
            start for the no-audio timeout); ``dead`` (a process of the capture has exited).
        heard_sound: the capture has heard sound at least once (silence after it is a pause).
        sampled_at: wall clock (Unix seconds) when the sample was taken.
    """

    source: str
    media_s: float
    rms_dbfs: float
    bytes_total: int
    bytes_per_s: float
    silent_s: float
    alive: Mapping[str, bool]
    status: HealthStatus
    sampled_at: float
    heard_sound: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "source": self.source,
            "media_s": round(self.media_s, 3),
            "rms_dbfs": round(self.rms_dbfs, 1),
            "bytes_total": self.bytes_total,
            "bytes_per_s": round(self.bytes_per_s, 1),
            "silent_s": round(self.silent_s, 3),
            "alive": dict(self.alive),
            "status": self.status,
            "sampled_at": round(self.sampled_at, 3),
            "heard_sound": self.heard_sound,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HealthSample:
        try:
            if d.get("v", WIRE_VERSION) != WIRE_VERSION:
                raise ValueError(f"wire version {d.get('v')}, expected {WIRE_VERSION}")
            status = str(d["status"])
            if status not in ("ok", "silent", "no_audio", "dead"):
                raise ValueError(f"unknown status {status!r}")
            return cls(
                str(d["source"]),
                float(d["media_s"]),
                float(d["rms_dbfs"]),
                int(d["bytes_total"]),
                float(d["bytes_per_s"]),
                float(d["silent_s"]),
                {str(k): bool(v) for k, v in dict(d["alive"]).items()},
                status,  # type: ignore[arg-type]
                float(d["sampled_at"]),
                bool(d.get("heard_sound", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SerializationError(f"cannot decode HealthSample: {e}") from e


def dbfs(rms: float) -> float:
    return FLOOR_DBFS if rms <= 0 else max(FLOOR_DBFS, 20 * math.log10(rms))


@dataclass
class HealthMonitor:
    """Watches one capture's PCM; iterate ``watch(pcm)`` in place of ``pcm``.

    Attributes:
        source: what is captured, named in samples and in the ``no_audio`` message.
        note: how it is captured, for the ``no_audio`` message (e.g. "an HTML page rendered in Chromium").
        no_audio_timeout_s: silence from the start for this long raises ``NoAudio``; None never
            does. It no longer applies once sound was heard.
        silence_timeout_s: silence after sound for this long raises ``SilenceTimeout``; None (the
            default) never does: a pause is a health state.
        heard_sound: sound was heard already (a capture that continues a session which had sound:
            its silence is a pause from the start).
        silence_dbfs: a second quieter than this is silent.
        processes: name → callable telling whether that process is alive.
        on_sample: called with each sample as it is taken (must not block).
    """

    source: str
    note: str = ""
    no_audio_timeout_s: float | None = None
    silence_timeout_s: float | None = None
    silence_dbfs: float = SILENCE_DBFS
    processes: Mapping[str, Callable[[], bool]] = field(default_factory=dict)
    on_sample: Callable[[HealthSample], None] | None = None
    history: deque[HealthSample] = field(default_factory=lambda: deque(maxlen=HEALTH_HISTORY))
    bytes_total: int = 0
    silent_s: float = 0.0
    heard_sound: bool = False
    _second: int | None = None
    _sum_sq: float = 0.0
    _count: int = 0
    _last_at: float = field(default_factory=time.time)
    _last_bytes: int = 0

    @property
    def latest(self) -> HealthSample | None:
        return self.history[-1] if self.history else None

    def alive(self) -> dict[str, bool]:
        return {name: bool(check()) for name, check in self.processes.items()}

    def observe(self, chunk: PcmChunk) -> list[HealthSample]:
        """Account for ``chunk``; returns the samples of the seconds it completed."""
        self.bytes_total += PCM_BYTES_PER_SAMPLE * len(chunk.samples)
        samples: list[HealthSample] = []
        pos = chunk.start_sample
        data = chunk.samples.astype(np.float64, copy=False)
        while len(data):
            second = pos // SAMPLE_RATE_HZ
            if self._second is None:
                self._second = second
            if second != self._second:  # the clock jumped (a restarted recorder): close what we have
                if self._count:
                    samples.append(self._close_second())
                self._second = second
            take = min(len(data), (second + 1) * SAMPLE_RATE_HZ - pos)
            part = data[:take]
            self._sum_sq += float(np.dot(part, part))
            self._count += take
            pos += take
            data = data[take:]
            if pos % SAMPLE_RATE_HZ == 0:
                samples.append(self._close_second())
                self._second = pos // SAMPLE_RATE_HZ
        return samples

    def _close_second(self) -> HealthSample:
        level = dbfs(math.sqrt(self._sum_sq / self._count)) if self._count else FLOOR_DBFS
        seconds = self._count / SAMPLE_RATE_HZ
        end_s = ((self._second or 0) * SAMPLE_RATE_HZ + self._count) / SAMPLE_RATE_HZ
        self._sum_sq, self._count = 0.0, 0
        if level < self.silence_dbfs:
            self.silent_s += seconds
        else:
            self.silent_s = 0.0
            self.heard_sound = True
        now = time.time()
        rate = (self.bytes_total - self._last_bytes) / max(now - self._last_at, 1e-3)
        self._last_at, self._last_bytes = now, self.bytes_total
        alive = self.alive()
        status: HealthStatus = "ok"
        if not all(alive.values()):
            status = "dead"
        elif not self.heard_sound and self.no_audio_timeout_s is not None and self.silent_s >= self.no_audio_timeout_s:
            status = "no_audio"
        elif self.silent_s > 0:
            status = "silent"
        sample = HealthSample(
            self.source, end_s, level, self.bytes_total, rate, self.silent_s, alive, status, now, self.heard_sound
        )
        self.history.append(sample)
        if self.on_sample is not None:
            self.on_sample(sample)
        return sample

    def verdict(self) -> NoAudio | None:
        """``NoAudio`` once the source has been silent from its start for the no-audio timeout;
        ``SilenceTimeout`` once it has been silent after sound for the silence timeout (if set)."""
        source = f"{self.source}, {self.note}," if self.note else self.source
        if not self.heard_sound:
            if self.no_audio_timeout_s is None or self.silent_s < self.no_audio_timeout_s:
                return None
            return NoAudio(
                f"no_audio: {source} played no sound for {self.silent_s:.0f} s "
                f"(quieter than {self.silence_dbfs:.0f} dBFS; --no-audio-timeout sets the limit)"
            )
        if self.silence_timeout_s is None or self.silent_s < self.silence_timeout_s:
            return None
        return SilenceTimeout(
            f"silence_timeout: {source} has been silent for {self.silent_s:.0f} s after sound "
            f"(quieter than {self.silence_dbfs:.0f} dBFS; --silence-timeout sets the limit)"
        )

    async def watch(self, pcm: AsyncIterable[PcmChunk]) -> AsyncIterator[PcmChunk]:
        """``pcm`` unchanged, with health taken on the way; raises ``NoAudio`` on the verdict.
        Closing this closes ``pcm`` too (a decoder then stops its FFmpeg at once)."""
        it = aiter(pcm)
        try:
            async for chunk in it:
                self.observe(chunk)
                error = self.verdict()
                if error is not None:
                    raise error
                yield chunk
        finally:
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()


__all__ = ["NO_AUDIO_TIMEOUT_S", "SILENCE_DBFS", "HealthMonitor", "HealthSample", "HealthStatus", "dbfs"]
