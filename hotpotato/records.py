"""The swap's records: its state in the broker, and the session events that report it.

``SwapState`` is one swap of one session, from request to outcome; the broker keeps the current one
and a short history under ``swap:<session>`` (``SwapRecord``). Its phases:

```
requested ──► starting ──► aligned ──► cut ──► completed
   (api)     (old accepts,  (new holds   (old stopped
             new enqueued)   aligned      emitting at the
                             audio)       cut; new commits)
            └──────────────┴────────────┴──► failed   (old keeps capturing)
```

A swap for a dead instance (``mode="resume"``) goes from ``starting`` straight to ``cut``: the
cut is the last media time the old instance committed.

``SwapEvent`` is what a session's transcript stream carries about swaps: ``swap_started``,
``swap_completed`` and ``swap_failed``, each with the swap's id, trigger and reason, so the API,
console and metrics see every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from .errors import SerializationError

SwapPhase = Literal["requested", "starting", "aligned", "cut", "completed", "failed"]
SwapMode = Literal["overlap", "resume"]
SwapTrigger = Literal["api", "supervisor", "drain", "failover", "worker_lost"]
PHASES: tuple[SwapPhase, ...] = ("requested", "starting", "aligned", "cut", "completed", "failed")
ACTIVE_PHASES: tuple[SwapPhase, ...] = ("requested", "starting", "aligned", "cut")
TERMINAL_PHASES: tuple[SwapPhase, ...] = ("completed", "failed")
TRIGGERS: tuple[SwapTrigger, ...] = ("api", "supervisor", "drain", "failover", "worker_lost")
SWAP_EVENT_TYPES = ("swap_started", "swap_completed", "swap_failed")


@dataclass(frozen=True)
class SwapState:
    """One swap of one session's capture instance.

    Attributes:
        id: the swap's id.
        session_id: the session.
        phase: see the module docstring.
        trigger: api, supervisor, drain (rolling deploy), failover (the instance died), worker_lost.
        reason: one line: why.
        mode: ``overlap`` (both capture, aligned, cut in a pause) or ``resume`` (the old instance is
            dead: the new one resumes from the last committed media time).
        requested_at, started_at, aligned_at, cut_at, finished_at: wall clock of each step.
        old_job, new_job: the capture jobs of the old and new instances; new_worker: where it runs.
        old_epoch: the old instance's epoch (the new one's is one more).
        old_position: session sample the old instance had reached when it accepted the swap, and
            old_position_at: when (the new instance seeks a file there).
        from_sample: first session sample the new instance holds (after alignment).
        alignment: the new instance's ``Alignment`` (as a dict).
        cut_sample: the cut-over point; next_seq: the first seq the new instance cuts.
        lost_s: audio between the cut and the new instance's first sample (0 when backfilled).
        detection_s: for a broken instance, how long the supervisor took to decide.
        error: why it failed.
    """

    id: str
    session_id: str
    phase: SwapPhase
    trigger: str
    reason: str
    mode: SwapMode = "overlap"
    requested_at: float = 0.0
    started_at: float | None = None
    aligned_at: float | None = None
    cut_at: float | None = None
    finished_at: float | None = None
    old_job: str = ""
    new_job: str = ""
    new_worker: str = ""
    old_epoch: int = 0
    old_position: int | None = None
    old_position_at: float | None = None
    from_sample: int | None = None
    alignment: dict[str, Any] | None = None
    cut_sample: int | None = None
    next_seq: int | None = None
    lost_s: float = 0.0
    detection_s: float | None = None
    error: str = ""

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    def but(self, **changes: Any) -> SwapState:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": 1}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = round(value, 3) if isinstance(value, float) else value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SwapState:
        try:
            if d.get("v", 1) != 1:
                raise ValueError(f"version {d.get('v')}")
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in d.items() if k in known}
            if values.get("phase") not in PHASES:
                raise ValueError(f"unknown phase {values.get('phase')!r}")
            if values.get("mode", "overlap") not in ("overlap", "resume"):
                raise ValueError(f"unknown mode {values.get('mode')!r}")
            for name in ("id", "session_id", "trigger", "reason"):
                values[name] = str(values[name])
            return cls(**values)
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode SwapState: {e}") from e

    def summary(self) -> dict[str, Any]:
        """What the history keeps of a finished swap."""
        keep = ("id", "phase", "trigger", "reason", "mode", "requested_at", "finished_at", "old_epoch")
        out = {k: v for k, v in self.to_dict().items() if k in keep}
        out["error"] = self.error
        out["lost_s"] = round(self.lost_s, 3)
        if self.alignment:
            out["method"] = self.alignment.get("method")
            out["confidence"] = self.alignment.get("confidence")
        return out


@dataclass(frozen=True)
class SwapRecord:
    """What the broker keeps per session under ``swap:<session>``: the current (or last) swap and
    summaries of the ones before it, newest last."""

    current: SwapState | None = None
    history: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "current": self.current.to_dict() if self.current else None,
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SwapRecord:
        if not d:
            return cls()
        try:
            cur = d.get("current")
            return cls(SwapState.from_dict(cur) if cur else None, tuple(dict(h) for h in d.get("history") or ()))
        except (TypeError, ValueError, AttributeError) as e:
            raise SerializationError(f"cannot decode SwapRecord: {e}") from e


@dataclass(frozen=True)
class SwapEvent:
    """A swap decision or outcome in a session's transcript stream.

    Attributes:
        type: ``swap_started``, ``swap_completed`` or ``swap_failed``.
        swap_id, trigger, reason, mode: as in ``SwapState``.
        at: wall clock of the event.
        epoch: the capture instance generation: the old one's for ``swap_started``/``swap_failed``,
            the new one's for ``swap_completed``.
        details: the rest (cut_s, next_seq, alignment, lost_s, detection_s, takeover_s, error, jobs).
    """

    type: str
    swap_id: str
    trigger: str
    reason: str
    mode: str
    at: float
    epoch: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.details,
            "type": self.type,
            "swap_id": self.swap_id,
            "trigger": self.trigger,
            "reason": self.reason,
            "mode": self.mode,
            "at": round(self.at, 3),
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SwapEvent:
        try:
            kind = str(d["type"])
            if kind not in SWAP_EVENT_TYPES:
                raise ValueError(f"not a swap event: {kind!r}")
            base = ("type", "swap_id", "trigger", "reason", "mode", "at", "epoch")
            return cls(
                kind,
                str(d["swap_id"]),
                str(d["trigger"]),
                str(d["reason"]),
                str(d["mode"]),
                float(d["at"]),
                int(d["epoch"]),
                {k: v for k, v in d.items() if k not in base},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode SwapEvent: {e}") from e

    @classmethod
    def of(cls, kind: str, swap: SwapState, at: float, epoch: int, **details: Any) -> SwapEvent:
        return cls(kind, swap.id, swap.trigger, swap.reason, swap.mode, at, epoch, details)


def is_swap_event(d: Mapping[str, Any]) -> bool:
    return d.get("type") in SWAP_EVENT_TYPES


__all__ = [
    "ACTIVE_PHASES",
    "PHASES",
    "SWAP_EVENT_TYPES",
    "TERMINAL_PHASES",
    "TRIGGERS",
    "SwapEvent",
    "SwapMode",
    "SwapPhase",
    "SwapRecord",
    "SwapState",
    "SwapTrigger",
    "is_swap_event",
]
