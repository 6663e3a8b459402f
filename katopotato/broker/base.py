"""The Broker protocol: durable job queues, keyed state and event streams, behind one interface.

A broker is the only thing the processes of a deployment share. It offers three things:

- **Job queues** with at-least-once delivery. ``enqueue`` is durable and idempotent by key;
  ``claim`` leases ready jobs to a worker (highest priority first, per-kind concurrency limits
  across all workers); the worker renews its leases with ``heartbeat`` and ends each with
  ``succeed``, ``fail`` (retried with the delay it gives, or dead-lettered when its tries are used
  up), ``release`` (handed back, not counted as a try) or ``finish_cancelled``. A lease that is not
  renewed within the visibility timeout (its worker died) is reclaimed by the next ``claim`` anywhere
  and the job retried, or dead-lettered if it has no tries left. Every transition appends a
  ``JobEvent`` to the job's event stream (``jobs.job_events_stream``), atomically with it.
- **Keyed state** with compare-and-set: ``kv_get`` returns a value and its version, ``kv_cas``
  writes only if the version is unchanged, and can append entries to a stream in the same atomic
  step (so a committed state change and the events it produced can never be separated).
- **Append-only streams** read from an id onward, with blocking reads; ids are strings ordered like
  Redis stream ids (``<ms>-<n>``), usable as SSE ``Last-Event-ID``.

Both backends (``memory.py``, ``redis.py``) pass one contract suite (tests/scheduler/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from ..constants import IDEMPOTENCY_TTL_S, RESULT_TTL_S, VISIBILITY_TIMEOUT_S
from ..errors import ConfigError
from ..jobs import Job


@dataclass(frozen=True, slots=True)
class Lease:
    """A job leased to one worker; ``token`` proves the lease is still this worker's."""

    job: Job
    token: str


class LeaseState(StrEnum):
    """What a heartbeat found: the lease holds, holds but the job is being cancelled, or is lost."""

    OK = "ok"
    CANCEL = "cancel"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of a stream: its id and its JSON object."""

    id: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Versioned:
    """A keyed value and its version (1 after the first write; an absent key has version 0)."""

    value: dict[str, Any]
    version: int


@dataclass(frozen=True, slots=True)
class BrokerStats:
    """Queue depths: ready jobs per kind, and totals of delayed, running and dead jobs."""

    ready: dict[str, int] = field(default_factory=dict)
    delayed: int = 0
    running: int = 0
    dead: int = 0


@runtime_checkable
class Broker(Protocol):
    """What the scheduler, the workers and the transcription jobs need from a broker."""

    url: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def close(self) -> None:
        """Release connections; the broker cannot be used afterwards."""
        ...

    # --- jobs ---------------------------------------------------------------------------------

    async def enqueue(
        self, job: Job, *, defer_s: float = 0.0, idempotency_ttl_s: float = IDEMPOTENCY_TTL_S
    ) -> tuple[Job, bool]:
        """Store and queue ``job``; ``(job, True)``, or ``(existing, False)`` when its
        idempotency key already names a job. ``created_at`` is set by the broker."""
        ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def find_job(self, idempotency_key: str) -> Job | None:
        """The job an idempotency key names while the key is kept, else None."""
        ...

    async def list_jobs(
        self, *, kind: str | None = None, status: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[Job]:
        """Newest first; with ``before`` (a job id), only jobs older than that one (the next page).
        Raises JobNotFound when ``before`` names no job any more."""
        ...

    async def claim(
        self,
        consumer: str,
        kinds: Sequence[str],
        *,
        max_jobs: int = 1,
        limits: Mapping[str, int] | None = None,
        visibility_s: float = VISIBILITY_TIMEOUT_S,
    ) -> list[Lease]:
        """Lease up to ``max_jobs`` ready jobs of ``kinds``, best priority first, respecting
        ``limits`` (kind → jobs running at once across all workers). Reclaims expired leases and
        promotes due delayed jobs first. Never blocks; see ``wait_for_work``."""
        ...

    async def wait_for_work(self, consumer: str, timeout_s: float) -> None:
        """Return when something may have become claimable since ``consumer``'s last empty
        ``claim`` (an enqueue, a freed slot, a due retry), or after ``timeout_s``."""
        ...

    async def heartbeat(
        self, leases: Sequence[Lease], *, visibility_s: float = VISIBILITY_TIMEOUT_S
    ) -> dict[str, LeaseState]:
        """Renew leases; by job id, whether each holds, is being cancelled, or was lost."""
        ...

    async def progress(self, lease: Lease, done: float, total: float | None, message: str) -> LeaseState: ...

    async def succeed(self, lease: Lease, result: Any, *, result_ttl_s: float = RESULT_TTL_S) -> bool:
        """Store the result (JSON) with a TTL; False if the lease was lost (another worker has it)."""
        ...

    async def fail(self, lease: Lease, error: str, *, retry_in_s: float | None) -> str | None:
        """A try failed: queued again after ``retry_in_s`` if tries are left (and it is not None),
        else failed and dead-lettered. The resulting status, or None if the lease was lost."""
        ...

    async def release(self, lease: Lease) -> bool:
        """Hand the job back to its queue (worker shutting down); the try does not count."""
        ...

    async def finish_cancelled(self, lease: Lease) -> bool: ...

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once; mark a running one (its worker stops it). Raises JobNotFound."""
        ...

    async def requeue(self, job_id: str) -> Job:
        """Queue a failed (dead-lettered) or cancelled job again with fresh tries."""
        ...

    async def dead_letters(self, *, limit: int = 100) -> list[Job]:
        """Failed jobs, most recent first."""
        ...

    async def result(self, job_id: str) -> tuple[bool, Any]:
        """``(True, value)`` while the result is kept, else ``(False, None)``."""
        ...

    async def stats(self, kinds: Sequence[str]) -> BrokerStats: ...

    # --- keyed state --------------------------------------------------------------------------

    async def kv_get(self, key: str) -> Versioned | None: ...

    async def kv_cas(
        self,
        key: str,
        version: int,
        value: Mapping[str, Any],
        *,
        append_to: str | None = None,
        entries: Sequence[Mapping[str, Any]] = (),
        ttl_s: float | None = None,
    ) -> list[str] | None:
        """Write ``value`` if the key is still at ``version`` (0: absent), appending ``entries`` to
        stream ``append_to`` in the same atomic step. The new entries' ids, or None on conflict."""
        ...

    async def kv_delete(self, key: str) -> None: ...

    # --- streams ------------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        entries: Sequence[Mapping[str, Any]],
        *,
        maxlen: int | None = None,
        ttl_s: float | None = None,
    ) -> list[str]:
        """Append entries; the new ids. ``maxlen`` keeps about that many newest entries (a stream of
        transient events), ``ttl_s`` deletes the stream that long after its last append."""
        ...

    async def read(
        self, stream: str, after: str = "0", *, count: int = 100, block_s: float | None = None
    ) -> list[StreamEntry]:
        """Entries with an id greater than ``after`` ("0": from the start), at most ``count``;
        when there are none and ``block_s`` is set, wait that long for one."""
        ...

    async def delete_stream(self, stream: str) -> None: ...


def parse_entry_id(entry_id: str) -> tuple[int, int]:
    """Order key of a stream id (``<ms>-<n>``; ``0`` and ``""`` sort first)."""
    if not entry_id or entry_id == "0":
        return (0, 0)
    ms, _, n = entry_id.partition("-")
    try:
        return (int(ms), int(n or 0))
    except ValueError:
        raise ConfigError(f"bad stream id {entry_id!r}: expected <ms>-<n>") from None


__all__ = ["Broker", "BrokerStats", "Lease", "LeaseState", "StreamEntry", "Versioned", "parse_entry_id"]
