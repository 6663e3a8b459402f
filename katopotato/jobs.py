"""The job record and its wire forms.

A ``Job`` is what the scheduler knows about one unit of work: its kind (``plugin.job``), its
parameters, where it is in its life (queued → running → succeeded / failed / cancelled; a failed try
with tries left goes back to queued), how often it was tried, its last progress report, where its
result is, and when things happened (``*_at``: Unix seconds, wall clock).

``Job.to_dict``/``Job.from_dict`` are the JSON form (API, CLI); ``job_to_fields``/``job_from_fields``
are the flat string form a broker stores (a Redis hash), built on the same dict so the two cannot
drift apart. ``JobEvent`` is one entry of a job's event stream (status changes and progress).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from .constants import DEFAULT_MAX_TRIES, PRIORITY_NORMAL
from .errors import SerializationError

WIRE_VERSION = 1


class JobStatus(StrEnum):
    """Where a job is in its life. A job waiting for a retry is ``queued`` with ``tries > 0``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


TERMINAL_STATUSES = frozenset(s for s in JobStatus if s.terminal)


@dataclass(frozen=True, slots=True)
class Progress:
    """A job's last progress report: ``done`` of ``total`` (unknown total: None) and a message."""

    done: float = 0.0
    total: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Progress:
        total = d.get("total")
        done = float(d.get("done", 0.0))
        return cls(done, None if total is None else float(total), str(d.get("message", "")))


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work.

    Attributes:
        id: unique, generated at enqueue.
        kind: ``plugin.job``, e.g. ``core.purge_audio``.
        params: the job's parameters (JSON object), validated against the kind's model at enqueue.
        status: queued, running, succeeded, failed or cancelled.
        priority: lower runs first (``constants.PRIORITY_LIVE`` is 0).
        tries: attempts started so far (a job handed back on shutdown does not count it).
        max_tries: attempts allowed; after the last one fails the job is dead-lettered.
        progress: the last progress report, if any.
        result_ref: where the result is kept (``results/<id>``) once the job succeeded.
        created_at, started_at, finished_at: wall-clock Unix seconds.
        error: the last error, one line (kept when a retry is queued).
        parent_id: the job that enqueued this one (fan-out), if any.
        idempotency_key: the key this job was enqueued under, if any.
        worker: the worker that runs or last ran it.
        cancel_requested: a cancel arrived while it was running; the worker is stopping it.
        ready_at: when a deferred or retried job becomes runnable.
    """

    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = JobStatus.QUEUED
    priority: int = PRIORITY_NORMAL
    tries: int = 0
    max_tries: int = DEFAULT_MAX_TRIES
    progress: Progress | None = None
    result_ref: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    parent_id: str | None = None
    idempotency_key: str | None = None
    worker: str | None = None
    cancel_requested: bool = False
    ready_at: float | None = None

    @property
    def plugin(self) -> str:
        return self.kind.partition(".")[0]

    @property
    def dead(self) -> bool:
        """Failed for good: it is on the dead-letter list until requeued."""
        return self.status is JobStatus.FAILED

    def evolve(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": WIRE_VERSION,
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "status": self.status.value,
            "priority": self.priority,
            "tries": self.tries,
            "max_tries": self.max_tries,
            "progress": self.progress.to_dict() if self.progress else None,
            "result_ref": self.result_ref,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "parent_id": self.parent_id,
            "idempotency_key": self.idempotency_key,
            "worker": self.worker,
            "cancel_requested": self.cancel_requested,
            "ready_at": self.ready_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Job:
        try:
            v = d.get("v", WIRE_VERSION)
            if int(v) != WIRE_VERSION:
                raise ValueError(f"wire version {v}, expected {WIRE_VERSION}")
            params = d.get("params") or {}
            if not isinstance(params, dict):
                raise TypeError("params is not an object")
            progress = d.get("progress")
            return cls(
                id=str(d["id"]),
                kind=str(d["kind"]),
                params=params,
                status=JobStatus(d.get("status", "queued")),
                priority=int(d.get("priority", PRIORITY_NORMAL)),
                tries=int(d.get("tries", 0)),
                max_tries=int(d.get("max_tries", DEFAULT_MAX_TRIES)),
                progress=Progress.from_dict(progress) if progress else None,
                result_ref=_opt_str(d.get("result_ref")),
                created_at=float(d.get("created_at") or 0.0),
                started_at=_opt_float(d.get("started_at")),
                finished_at=_opt_float(d.get("finished_at")),
                error=_opt_str(d.get("error")),
                parent_id=_opt_str(d.get("parent_id")),
                idempotency_key=_opt_str(d.get("idempotency_key")),
                worker=_opt_str(d.get("worker")),
                cancel_requested=bool(d.get("cancel_requested", False)),
                ready_at=_opt_float(d.get("ready_at")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode Job: {e}") from e


# The flat form: every value a string, "" for None; objects as JSON.
_JSON_FIELDS = ("params", "progress")
_BOOL_FIELDS = ("cancel_requested",)


def job_to_fields(job: Job) -> dict[str, str]:
    """The job as a flat mapping of strings (a Redis hash)."""
    out: dict[str, str] = {}
    try:
        for k, v in job.to_dict().items():
            if k in _JSON_FIELDS:
                out[k] = "" if v is None else json.dumps(v, separators=(",", ":"))
            elif k in _BOOL_FIELDS:
                out[k] = "1" if v else "0"
            else:
                out[k] = "" if v is None else str(v)
    except (TypeError, ValueError) as e:
        raise SerializationError(f"cannot encode job {job.id}: {e}") from e
    return out


def job_from_fields(fields: Mapping[str, str]) -> Job:
    """Inverse of ``job_to_fields``; fields a broker keeps for itself are ignored."""
    d: dict[str, Any] = {}
    try:
        for k in Job.__dataclass_fields__:
            raw = fields.get(k, "")
            if k in _JSON_FIELDS:
                d[k] = json.loads(raw) if raw else None
            elif k in _BOOL_FIELDS:
                d[k] = raw == "1"
            else:
                d[k] = raw if raw != "" else None
    except json.JSONDecodeError as e:
        raise SerializationError(f"cannot decode job fields: {e}") from e
    d["v"] = WIRE_VERSION
    return Job.from_dict(d)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One entry of a job's event stream; ``id`` is usable as an SSE ``Last-Event-ID``.

    Attributes:
        id: the stream entry id.
        type: ``status`` (a transition) or ``progress``.
        status: the job's status after the event.
        at: wall-clock Unix seconds.
        progress: the progress report (``progress`` events).
        error: the error that caused a transition, if any.
        tries: the job's tries at the time.
    """

    id: str
    type: str
    status: JobStatus
    at: float
    progress: Progress | None = None
    error: str | None = None
    tries: int = 0

    @property
    def terminal(self) -> bool:
        return self.type == "status" and self.status.terminal

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status.value,
            "at": self.at,
            "progress": self.progress.to_dict() if self.progress else None,
            "error": self.error,
            "tries": self.tries,
        }

    @classmethod
    def from_entry(cls, entry_id: str, d: Mapping[str, Any]) -> JobEvent:
        try:
            progress = d.get("progress")
            return cls(
                id=entry_id,
                type=str(d["type"]),
                status=JobStatus(d["status"]),
                at=float(d.get("at", 0.0)),
                progress=Progress.from_dict(progress) if isinstance(progress, dict) else None,
                error=_opt_str(d.get("error")),
                tries=int(d.get("tries", 0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode job event {entry_id}: {e}") from e


def job_events_stream(job_id: str) -> str:
    """Name of the broker stream holding a job's events."""
    return f"job:{job_id}"


def _opt_str(v: Any) -> str | None:
    return None if v is None or v == "" else str(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None or v == "" else float(v)


__all__ = [
    "TERMINAL_STATUSES",
    "WIRE_VERSION",
    "Job",
    "JobEvent",
    "JobStatus",
    "Progress",
    "job_events_stream",
    "job_from_fields",
    "job_to_fields",
    "new_job_id",
]
