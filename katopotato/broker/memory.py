"""``memory://``: the broker in this process, for one machine and for tests.

Same semantics as the Redis broker (one contract suite checks both), kept in dicts and heaps and
guarded by the event loop (every method runs to completion between awaits, so each is atomic).
Values are stored as JSON, so what a caller gets back is always a copy and always serialisable.
Nothing survives the process: "durable" here means durable for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from ..constants import (
    IDEMPOTENCY_TTL_S,
    JOB_EVENTS_MAXLEN,
    JOB_TTL_S,
    RESULT_TTL_S,
    VISIBILITY_TIMEOUT_S,
)
from ..errors import BrokerError, JobNotFound, JobStateError, SerializationError
from ..jobs import Job, JobStatus, Progress, job_events_stream
from .base import BrokerStats, Lease, LeaseState, StreamEntry, Versioned, parse_entry_id


@dataclass
class _Stream:
    entries: list[tuple[tuple[int, int], str, str]] = field(default_factory=list)
    last: tuple[int, int] = (0, 0)
    expires_at: float | None = None


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SerializationError(f"not JSON-serialisable: {e}") from e


class MemoryBroker:
    """An in-process broker. ``async with MemoryBroker() as broker``."""

    def __init__(self, url: str = "memory://", *, job_ttl_s: float = JOB_TTL_S) -> None:
        self.url = url
        self.job_ttl_s = job_ttl_s
        self._jobs: dict[str, Job] = {}
        self._job_expiry: dict[str, float] = {}
        self._scores: dict[str, int] = {}
        self._tokens: dict[str, str] = {}
        self._ready: dict[str, list[tuple[int, str]]] = {}
        self._queued: dict[str, int] = {}  # job id → score while in a ready heap
        self._delayed: list[tuple[float, str]] = []
        self._delayed_at: dict[str, float] = {}
        self._running: dict[str, float] = {}  # job id → lease deadline
        self._active: Counter[str] = Counter()
        self._dead: dict[str, float] = {}
        self._idem: dict[str, tuple[str, float]] = {}
        self._results: dict[str, tuple[str, float]] = {}
        self._kv: dict[str, tuple[str, int, float | None]] = {}
        self._streams: dict[str, _Stream] = {}
        self._seq = itertools.count(1)
        self._gen = 0
        self._changed = asyncio.Event()
        self._seen_gen: dict[str, int] = {}
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        self._notify()

    # --- internals ----------------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise BrokerError("the memory broker is closed")

    def _notify(self) -> None:
        self._gen += 1
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def _wait_change(self, gen: int, timeout_s: float) -> None:
        if self._gen != gen or self._closed or timeout_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    def _job(self, job_id: str) -> Job | None:
        exp = self._job_expiry.get(job_id)
        if exp is not None and exp <= time.time():
            self._jobs.pop(job_id, None)
            self._job_expiry.pop(job_id, None)
            self._streams.pop(job_events_stream(job_id), None)
        return self._jobs.get(job_id)

    def _event(self, job: Job, type_: str = "status", *, error: str | None = None) -> None:
        entry: dict[str, Any] = {"type": type_, "status": job.status.value, "at": time.time()}
        entry["tries"] = job.tries
        if error:
            entry["error"] = error
        if type_ == "progress" and job.progress is not None:
            entry["progress"] = job.progress.to_dict()
        self._append(job_events_stream(job.id), [entry], maxlen=JOB_EVENTS_MAXLEN)

    def _make_ready(self, job: Job) -> None:
        score = self._scores[job.id]
        heapq.heappush(self._ready.setdefault(job.kind, []), (score, job.id))
        self._queued[job.id] = score

    def _unqueue(self, job_id: str) -> None:
        self._queued.pop(job_id, None)
        self._delayed_at.pop(job_id, None)

    def _finish_ttl(self, job_id: str) -> None:
        exp = time.time() + self.job_ttl_s
        self._job_expiry[job_id] = exp
        stream = self._streams.get(job_events_stream(job_id))
        if stream is not None:
            stream.expires_at = exp

    def _end_lease(self, job: Job) -> None:
        self._running.pop(job.id, None)
        self._tokens.pop(job.id, None)
        self._active[job.kind] -= 1

    def _reclaim_and_promote(self, now: float) -> None:
        for job_id, deadline in list(self._running.items()):
            if deadline > now:
                continue
            job = self._job(job_id)
            if job is None:
                self._running.pop(job_id, None)
                continue
            self._end_lease(job)
            err = f"worker lost: lease expired on try {job.tries}"
            if job.cancel_requested:
                job = job.evolve(status=JobStatus.CANCELLED, finished_at=now)
                self._finish_ttl(job.id)
            elif job.tries >= job.max_tries:
                job = job.evolve(status=JobStatus.FAILED, error=err, finished_at=now)
                self._dead[job.id] = now
            else:
                job = job.evolve(status=JobStatus.QUEUED, error=err)
                self._make_ready(job)
            self._jobs[job.id] = job
            self._event(job, error=err)
        while self._delayed and self._delayed[0][0] <= now:
            at, job_id = heapq.heappop(self._delayed)
            if self._delayed_at.get(job_id) != at:
                continue
            del self._delayed_at[job_id]
            job = self._job(job_id)
            if job is not None and job.status is JobStatus.QUEUED:
                self._make_ready(job)

    def _pop_best(self, kinds: Sequence[str], limits: Mapping[str, int]) -> Job | None:
        best: tuple[int, str, str] | None = None
        for kind in kinds:
            limit = limits.get(kind, 0)
            if limit > 0 and self._active[kind] >= limit:
                continue
            heap = self._ready.get(kind)
            while heap and self._queued.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)  # cancelled or requeued since it was pushed
            if heap and (best is None or heap[0][0] < best[0]):
                best = (heap[0][0], heap[0][1], kind)
        if best is None:
            return None
        heapq.heappop(self._ready[best[2]])
        del self._queued[best[1]]
        return self._job(best[1])

    # --- jobs ---------------------------------------------------------------------------------

    async def enqueue(
        self, job: Job, *, defer_s: float = 0.0, idempotency_ttl_s: float = IDEMPOTENCY_TTL_S
    ) -> tuple[Job, bool]:
        self._check()
        now = time.time()
        key = job.idempotency_key
        if key:
            hit = self._idem.get(key)
            if hit is not None and hit[1] > now and self._job(hit[0]) is not None:
                return self._jobs[hit[0]], False
        _dumps(job.params)
        job = job.evolve(status=JobStatus.QUEUED, created_at=now, tries=0)
        self._scores[job.id] = job.priority * 2**32 + next(self._seq)
        if defer_s > 0:
            job = job.evolve(ready_at=now + defer_s)
            self._delayed_at[job.id] = now + defer_s
            heapq.heappush(self._delayed, (now + defer_s, job.id))
        else:
            self._make_ready(job)
        self._jobs[job.id] = job
        if key:
            self._idem[key] = (job.id, now + idempotency_ttl_s)
        self._event(job)
        self._notify()
        return job, True

    async def get_job(self, job_id: str) -> Job | None:
        self._check()
        return self._job(job_id)

    async def find_job(self, idempotency_key: str) -> Job | None:
        self._check()
        hit = self._idem.get(idempotency_key)
        if hit is None or hit[1] <= time.time():
            return None
        return self._job(hit[0])

    async def list_jobs(
        self, *, kind: str | None = None, status: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[Job]:
        self._check()
        out: list[Job] = []
        ids = list(self._jobs)
        if before is not None:
            if self._job(before) is None:
                raise JobNotFound(f"no job {before}")
            ids = ids[: ids.index(before)]
        for job_id in reversed(ids):
            job = self._job(job_id)
            if job is None or (kind and job.kind != kind) or (status and job.status != status):
                continue
            out.append(job)
            if len(out) >= limit:
                break
        return out

    async def claim(
        self,
        consumer: str,
        kinds: Sequence[str],
        *,
        max_jobs: int = 1,
        limits: Mapping[str, int] | None = None,
        visibility_s: float = VISIBILITY_TIMEOUT_S,
    ) -> list[Lease]:
        self._check()
        now = time.time()
        self._reclaim_and_promote(now)
        leases: list[Lease] = []
        for _ in range(max_jobs):
            job = self._pop_best(kinds, limits or {})
            if job is None:
                break
            job = job.evolve(status=JobStatus.RUNNING, tries=job.tries + 1, started_at=now, worker=consumer)
            token = uuid.uuid4().hex
            self._jobs[job.id] = job
            self._tokens[job.id] = token
            self._running[job.id] = now + visibility_s
            self._active[job.kind] += 1
            self._event(job)
            leases.append(Lease(job, token))
        if not leases:
            self._seen_gen[consumer] = self._gen
        return leases

    async def wait_for_work(self, consumer: str, timeout_s: float) -> None:
        self._check()
        if self._delayed:
            timeout_s = min(timeout_s, max(0.0, self._delayed[0][0] - time.time()))
        if self._running:
            timeout_s = min(timeout_s, max(0.0, min(self._running.values()) - time.time()))
        await self._wait_change(self._seen_gen.get(consumer, -1), timeout_s)

    def _holds(self, lease: Lease) -> Job | None:
        if self._tokens.get(lease.job.id) != lease.token:
            return None
        return self._job(lease.job.id)

    async def heartbeat(
        self, leases: Sequence[Lease], *, visibility_s: float = VISIBILITY_TIMEOUT_S
    ) -> dict[str, LeaseState]:
        self._check()
        now = time.time()
        out: dict[str, LeaseState] = {}
        for lease in leases:
            job = self._holds(lease)
            if job is None:
                out[lease.job.id] = LeaseState.LOST
                continue
            self._running[job.id] = now + visibility_s
            out[job.id] = LeaseState.CANCEL if job.cancel_requested else LeaseState.OK
        return out

    async def progress(self, lease: Lease, done: float, total: float | None, message: str) -> LeaseState:
        self._check()
        job = self._holds(lease)
        if job is None:
            return LeaseState.LOST
        job = job.evolve(progress=Progress(done, total, message))
        self._jobs[job.id] = job
        self._event(job, "progress")
        return LeaseState.CANCEL if job.cancel_requested else LeaseState.OK

    async def succeed(self, lease: Lease, result: Any, *, result_ttl_s: float = RESULT_TTL_S) -> bool:
        self._check()
        encoded = _dumps(result)
        job = self._holds(lease)
        if job is None:
            return False
        now = time.time()
        self._end_lease(job)
        self._results[job.id] = (encoded, now + result_ttl_s)
        job = job.evolve(status=JobStatus.SUCCEEDED, finished_at=now, result_ref=f"results/{job.id}", error=None)
        self._jobs[job.id] = job
        self._finish_ttl(job.id)
        self._event(job)
        self._notify()
        return True

    async def fail(self, lease: Lease, error: str, *, retry_in_s: float | None) -> str | None:
        self._check()
        job = self._holds(lease)
        if job is None:
            return None
        now = time.time()
        self._end_lease(job)
        if retry_in_s is not None and job.tries < job.max_tries:
            job = job.evolve(status=JobStatus.QUEUED, error=error)
            if retry_in_s > 0:
                job = job.evolve(ready_at=now + retry_in_s)
                self._delayed_at[job.id] = now + retry_in_s
                heapq.heappush(self._delayed, (now + retry_in_s, job.id))
            else:
                self._make_ready(job)
        else:
            job = job.evolve(status=JobStatus.FAILED, error=error, finished_at=now)
            self._dead[job.id] = now
        self._jobs[job.id] = job
        self._event(job, error=error)
        self._notify()
        return job.status.value

    async def release(self, lease: Lease) -> bool:
        self._check()
        job = self._holds(lease)
        if job is None:
            return False
        self._end_lease(job)
        job = job.evolve(status=JobStatus.QUEUED, tries=max(0, job.tries - 1))
        self._jobs[job.id] = job
        self._make_ready(job)
        self._event(job)
        self._notify()
        return True

    async def finish_cancelled(self, lease: Lease) -> bool:
        self._check()
        job = self._holds(lease)
        if job is None:
            return False
        self._end_lease(job)
        job = job.evolve(status=JobStatus.CANCELLED, finished_at=time.time())
        self._jobs[job.id] = job
        self._finish_ttl(job.id)
        self._event(job)
        self._notify()
        return True

    async def cancel(self, job_id: str) -> Job:
        self._check()
        job = self._job(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if job.status is JobStatus.QUEUED:
            self._unqueue(job_id)
            job = job.evolve(status=JobStatus.CANCELLED, finished_at=time.time())
            self._finish_ttl(job_id)
            self._event(job)
        elif job.status is JobStatus.RUNNING and not job.cancel_requested:
            job = job.evolve(cancel_requested=True)
            self._event(job, "cancel_requested")
        self._jobs[job_id] = job
        return job

    async def requeue(self, job_id: str) -> Job:
        self._check()
        job = self._job(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobStateError(f"job {job_id} is {job.status.value}; only failed or cancelled jobs can be requeued")
        self._dead.pop(job_id, None)
        self._job_expiry.pop(job_id, None)
        stream = self._streams.get(job_events_stream(job_id))
        if stream is not None:
            stream.expires_at = None
        job = job.evolve(
            status=JobStatus.QUEUED,
            tries=0,
            error=None,
            finished_at=None,
            started_at=None,
            cancel_requested=False,
            ready_at=None,
        )
        self._scores[job_id] = job.priority * 2**32 + next(self._seq)
        self._jobs[job_id] = job
        self._make_ready(job)
        self._event(job)
        self._notify()
        return job

    async def dead_letters(self, *, limit: int = 100) -> list[Job]:
        self._check()
        ids = sorted(self._dead, key=lambda i: self._dead[i], reverse=True)[:limit]
        return [j for j in (self._job(i) for i in ids) if j is not None]

    async def result(self, job_id: str) -> tuple[bool, Any]:
        self._check()
        hit = self._results.get(job_id)
        if hit is None or hit[1] <= time.time():
            self._results.pop(job_id, None)
            return False, None
        return True, json.loads(hit[0])

    async def stats(self, kinds: Sequence[str]) -> BrokerStats:
        self._check()
        ready = Counter(self._jobs[i].kind for i in self._queued if i in self._jobs)
        return BrokerStats(
            ready={k: ready.get(k, 0) for k in kinds},
            delayed=len(self._delayed_at),
            running=len(self._running),
            dead=len(self._dead),
        )

    # --- keyed state --------------------------------------------------------------------------

    async def kv_get(self, key: str) -> Versioned | None:
        self._check()
        hit = self._kv.get(key)
        if hit is None or (hit[2] is not None and hit[2] <= time.time()):
            self._kv.pop(key, None)
            return None
        return Versioned(json.loads(hit[0]), hit[1])

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
        self._check()
        encoded = _dumps(dict(value))
        encoded_entries = [_dumps(dict(e)) for e in entries]
        current = await self.kv_get(key)
        if (current.version if current else 0) != version:
            return None
        self._kv[key] = (encoded, version + 1, time.time() + ttl_s if ttl_s else None)
        ids = self._append_encoded(append_to, encoded_entries) if append_to else []
        return ids

    async def kv_delete(self, key: str) -> None:
        self._check()
        self._kv.pop(key, None)

    # --- streams ------------------------------------------------------------------------------

    def _append(self, stream: str, entries: Sequence[Mapping[str, Any]], maxlen: int | None = None) -> list[str]:
        return self._append_encoded(stream, [_dumps(dict(e)) for e in entries], maxlen)

    def _append_encoded(self, name: str, encoded: Sequence[str], maxlen: int | None = None) -> list[str]:
        stream = self._streams.get(name)
        if stream is None or (stream.expires_at is not None and stream.expires_at <= time.time()):
            stream = self._streams[name] = _Stream()
        ids = []
        for data in encoded:
            ms = int(time.time() * 1000)
            key = (ms, 0) if ms > stream.last[0] else (stream.last[0], stream.last[1] + 1)
            stream.last = key
            entry_id = f"{key[0]}-{key[1]}"
            stream.entries.append((key, entry_id, data))
            ids.append(entry_id)
        if maxlen is not None and len(stream.entries) > maxlen:
            del stream.entries[: len(stream.entries) - maxlen]
        if ids:
            self._notify()
        return ids

    async def append(
        self,
        stream: str,
        entries: Sequence[Mapping[str, Any]],
        *,
        maxlen: int | None = None,
        ttl_s: float | None = None,
    ) -> list[str]:
        self._check()
        ids = self._append(stream, entries, maxlen)
        if ttl_s is not None and stream in self._streams:
            self._streams[stream].expires_at = time.time() + ttl_s
        return ids

    async def read(
        self, stream: str, after: str = "0", *, count: int = 100, block_s: float | None = None
    ) -> list[StreamEntry]:
        self._check()
        after_key = parse_entry_id(after)
        deadline = time.monotonic() + (block_s or 0.0)
        while True:
            gen = self._gen
            s = self._streams.get(stream)
            if s is not None and s.expires_at is not None and s.expires_at <= time.time():
                del self._streams[stream]
                s = None
            if s is not None:
                lo, hi = 0, len(s.entries)
                while lo < hi:  # first entry after `after`
                    mid = (lo + hi) // 2
                    if s.entries[mid][0] <= after_key:
                        lo = mid + 1
                    else:
                        hi = mid
                found = s.entries[lo : lo + count]
                if found:
                    return [StreamEntry(i, json.loads(d)) for _, i, d in found]
            remaining = deadline - time.monotonic()
            if block_s is None or remaining <= 0 or self._closed:
                return []
            await self._wait_change(gen, remaining)

    async def delete_stream(self, stream: str) -> None:
        self._check()
        self._streams.pop(stream, None)


__all__ = ["MemoryBroker"]
