"""Supervision decisions: is a capture instance broken, or is its source just quiet?

The capture job feeds a ``Supervisor`` one ``HealthProbe`` every ``SUPERVISE_INTERVAL_S``: when the
last PCM arrived, how much media time and how many bytes have flowed, the level and length of the
current silence, which processes of the instance are alive, how many error lines FFmpeg (or
Chromium) printed. ``observe`` returns a ``Verdict``:

- ``starting``: no audio yet, within ``startup_s``;
- ``ok``: audio flows and is audible;
- ``silent``: audio flows, processes are alive, but the source is quiet: **never acted on** (a
  debate's pause, a page between two videos);
- ``degraded``: error lines while audio still flows (reported, not acted on);
- ``broken``: the capture, not the source, has failed: a process is dead (for ``dead_confirm_s``),
  no bytes for longer than ``detection_s`` (or ``burst_factor`` × the longest gap this source
  showed while healthy, so an HLS source delivering 6 s segments in bursts is not "stalled"; until
  it has seen ``learn_gaps`` gaps, at least ``initial_stall_s``),
  the capture's own fault (a page that renders no frame, media playing into a silent sink: every
  process alive and audio flowing, as silence, yet nothing can be heard),
  error lines and no audio for ``error_stall_s``, a live source delivering at well under real
  time, or no audio at all ``startup_s`` after the start.

A crashed Chromium tab is a process that died (the capture lists the tab's renderer among its
processes): a crashed tab and a quiet page both give digital silence, only liveness tells them
apart. The supervisor is pure: no I/O, no clock of its own (times come in the probes), so every
decision can be replayed in a unit test.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import constants as C
from .errors import SerializationError

VerdictState = Literal["starting", "ok", "silent", "degraded", "broken"]
VERDICT_STATES: tuple[VerdictState, ...] = ("starting", "ok", "silent", "degraded", "broken")


@dataclass(frozen=True, slots=True)
class HealthProbe:
    """What the capture job sees of its instance at one moment.

    Attributes:
        at: wall clock (Unix seconds) of the probe.
        started_at: when the instance started (its Capture was entered).
        audio_at: when the last PCM chunk arrived; None before the first.
        media_s: session media time the instance has reached.
        bytes_total: PCM bytes received since the instance started.
        rms_dbfs: level of the last complete second of audio (None before the first).
        silent_s: how long the audio has been silent.
        alive: whether each process of the instance is running, by name.
        errors_total: error lines its processes printed so far.
        last_error: the last of them.
        since_segment_s: seconds since the instance last emitted a segment (None: none yet).
        live: the source is live (a recorded file read at full speed has no real-time rate).
        fault: the capture's own word that it is broken although its processes live (a page that
            renders no frame, media playing into a silent sink); "" when it has none.
    """

    at: float
    started_at: float
    audio_at: float | None
    media_s: float
    bytes_total: int
    rms_dbfs: float | None
    silent_s: float
    alive: Mapping[str, bool]
    errors_total: int = 0
    last_error: str = ""
    since_segment_s: float | None = None
    live: bool = True
    fault: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "started_at": round(self.started_at, 3),
            "audio_at": None if self.audio_at is None else round(self.audio_at, 3),
            "media_s": round(self.media_s, 3),
            "bytes_total": self.bytes_total,
            "rms_dbfs": None if self.rms_dbfs is None else round(self.rms_dbfs, 1),
            "silent_s": round(self.silent_s, 3),
            "alive": dict(self.alive),
            "errors_total": self.errors_total,
            "last_error": self.last_error,
            "since_segment_s": None if self.since_segment_s is None else round(self.since_segment_s, 3),
            "live": self.live,
            "fault": self.fault,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HealthProbe:
        try:
            return cls(
                float(d["at"]),
                float(d["started_at"]),
                None if d.get("audio_at") is None else float(d["audio_at"]),
                float(d["media_s"]),
                int(d["bytes_total"]),
                None if d.get("rms_dbfs") is None else float(d["rms_dbfs"]),
                float(d["silent_s"]),
                {str(k): bool(v) for k, v in dict(d["alive"]).items()},
                int(d.get("errors_total", 0)),
                str(d.get("last_error", "")),
                None if d.get("since_segment_s") is None else float(d["since_segment_s"]),
                bool(d.get("live", True)),
                str(d.get("fault", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SerializationError(f"cannot decode HealthProbe: {e}") from e


@dataclass(frozen=True, slots=True)
class Verdict:
    """The supervisor's reading of one probe.

    Attributes:
        state: starting, ok, silent, degraded or broken (see the module docstring).
        reason: one line saying why, for the swap event and the console.
        since: when this state began (wall clock).
        evidence_at: for ``broken``: when the first sign of the failure appeared (the last audio,
            the first probe that saw a process dead), so ``decided_at - evidence_at`` is the time
            the detection took.
    """

    state: VerdictState
    reason: str
    since: float
    evidence_at: float | None = None

    @property
    def broken(self) -> bool:
        return self.state == "broken"

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "since": round(self.since, 3),
            "evidence_at": None if self.evidence_at is None else round(self.evidence_at, 3),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        try:
            state = str(d["state"])
            if state not in VERDICT_STATES:
                raise ValueError(f"unknown verdict {state!r}")
            return cls(
                state,
                str(d.get("reason", "")),
                float(d["since"]),
                None if d.get("evidence_at") is None else float(d["evidence_at"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode Verdict: {e}") from e


@dataclass(frozen=True)
class SupervisorOptions:
    """When a capture is judged broken.

    Attributes:
        detection_s: no audio for this long is a stall (goal: a broken capture is acted on within 5 s).
        dead_confirm_s: a process must be seen dead this long (a probe may race a restart).
        startup_s: an instance that gave no audio this long after it started is broken.
        burst_factor: a source may pause this many times its longest healthy gap (HLS bursts).
        max_learned_gap_s: the longest gap the supervisor accepts as the source's normal rhythm.
        error_stall_s: error lines and no audio for this long is broken (sooner than a plain stall).
        min_realtime_ratio: a live source delivering slower than this, over ``rate_window_s``, is broken.
        rate_window_s: the window the delivery rate is measured over.
        silent_dbfs: a second below this level is silent.
        learn_gaps: gaps between arrivals seen before the source's rhythm is trusted…
        initial_stall_s: …until then, the stall limit is at least this.
    """

    detection_s: float = C.DETECTION_S
    dead_confirm_s: float = C.DEAD_CONFIRM_S
    startup_s: float = C.STARTUP_S
    burst_factor: float = C.BURST_FACTOR
    max_learned_gap_s: float = C.MAX_LEARNED_GAP_S
    error_stall_s: float = C.ERROR_STALL_S
    min_realtime_ratio: float = C.MIN_REALTIME_RATIO
    rate_window_s: float = C.RATE_WINDOW_S
    silent_dbfs: float = C.SILENT_DBFS
    learn_gaps: int = C.LEARN_GAPS
    initial_stall_s: float = C.INITIAL_STALL_S

    def __post_init__(self) -> None:
        if self.detection_s <= 0 or self.dead_confirm_s < 0 or self.startup_s <= 0:
            raise ValueError("detection_s and startup_s must be positive, dead_confirm_s at least 0")

    @classmethod
    def coerce(cls, value: SupervisorOptions | Mapping[str, Any] | None) -> SupervisorOptions:
        if value is None:
            return cls()
        if isinstance(value, SupervisorOptions):
            return value
        return cls(**dict(value))


@dataclass
class Supervisor:
    """Turns a capture instance's probes into verdicts; see the module docstring."""

    options: SupervisorOptions = field(default_factory=SupervisorOptions)
    verdict: Verdict | None = None
    _dead_since: dict[str, float] = field(default_factory=dict)
    _gaps: deque[tuple[float, float]] = field(default_factory=deque)  # (at, gap) of healthy arrivals
    _rates: deque[tuple[float, float]] = field(default_factory=deque)  # (at, media_s)
    _last_audio_at: float | None = None
    _seen_gaps: int = 0
    _errors_total: int = 0
    _last_error_at: float | None = None

    def reset(self) -> None:
        """Forget everything: a new instance is being supervised."""
        self.verdict = None
        self._dead_since.clear()
        self._gaps.clear()
        self._rates.clear()
        self._last_audio_at = None
        self._seen_gaps = 0
        self._errors_total = 0
        self._last_error_at = None

    def stall_limit_s(self) -> float:
        """How long this source may go without audio before it counts as stalled."""
        o = self.options
        learned = max((gap for _, gap in self._gaps), default=0.0)
        limit = max(o.detection_s, o.burst_factor * min(learned, o.max_learned_gap_s))
        return limit if self._seen_gaps >= o.learn_gaps else max(limit, o.initial_stall_s)

    def observe(self, probe: HealthProbe) -> Verdict:
        """The verdict for ``probe`` (and the supervisor's new state)."""
        state, reason, evidence = self._judge(probe)
        if self.verdict is None or self.verdict.state != state:
            self.verdict = Verdict(state, reason, probe.at, evidence)
        elif self.verdict.reason != reason:
            self.verdict = Verdict(state, reason, self.verdict.since, self.verdict.evidence_at)
        return self.verdict

    def _judge(self, p: HealthProbe) -> tuple[VerdictState, str, float | None]:
        o = self.options
        now = p.at
        # Liveness: a process seen dead long enough.
        for name, alive in p.alive.items():
            if alive:
                self._dead_since.pop(name, None)
            else:
                self._dead_since.setdefault(name, now)
        dead = sorted((since, name) for name, since in self._dead_since.items() if now - since >= o.dead_confirm_s)
        # Errors printed since the last probe.
        if p.errors_total > self._errors_total:
            self._last_error_at = now
        self._errors_total = p.errors_total
        # Audio arrivals: learn the source's rhythm while it is healthy.
        if p.audio_at is not None and p.audio_at != self._last_audio_at:
            if self._last_audio_at is not None and not dead:
                self._gaps.append((p.audio_at, p.audio_at - self._last_audio_at))
                self._seen_gaps += 1
            self._last_audio_at = p.audio_at
            self._rates.append((now, p.media_s))
        while self._gaps and now - self._gaps[0][0] > 60.0:
            self._gaps.popleft()
        while len(self._rates) > 1 and now - self._rates[1][0] >= o.rate_window_s:
            self._rates.popleft()

        if dead:
            since, name = dead[0]
            names = ", ".join(n for _, n in dead)
            what = "the tab's renderer" if name == "tab" else names
            return "broken", f"{what} exited" + (f" ({_short(p.last_error)})" if p.last_error else ""), since
        if p.fault:
            return "broken", _short(p.fault, 300), p.started_at
        if p.audio_at is None:
            waited = now - p.started_at
            if waited >= o.startup_s:
                return "broken", f"no audio {waited:.0f} s after the capture started", p.started_at
            return "starting", f"waiting for the first audio ({waited:.1f} s)", None
        quiet_for = now - p.audio_at
        recent_error = self._last_error_at is not None and now - self._last_error_at <= o.detection_s
        if recent_error and quiet_for >= o.error_stall_s:
            return "broken", f"no audio for {quiet_for:.1f} s after an error: {_short(p.last_error)}", p.audio_at
        limit = self.stall_limit_s()
        if quiet_for >= limit:
            return "broken", f"no audio for {quiet_for:.1f} s (processes alive; limit {limit:.1f} s)", p.audio_at
        if p.live and len(self._rates) > 1:
            (t0, m0), (t1, m1) = self._rates[0], self._rates[-1]
            if t1 - t0 >= o.rate_window_s * 0.9:
                ratio = (m1 - m0) / (t1 - t0)
                if ratio < o.min_realtime_ratio:
                    return "broken", f"audio arrives at {ratio:.2f}x real time", t0
        if recent_error:
            return "degraded", f"error while audio still flows: {_short(p.last_error)}", None
        if p.rms_dbfs is not None and p.rms_dbfs < o.silent_dbfs:
            return "silent", f"quiet for {p.silent_s:.0f} s; audio flowing, processes alive (the source is quiet)", None
        return "ok", "audio flowing", None


def _short(line: str, limit: int = 160) -> str:
    text = " ".join(line.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["VERDICT_STATES", "HealthProbe", "Supervisor", "SupervisorOptions", "Verdict", "VerdictState"]
