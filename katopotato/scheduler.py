"""The scheduler: the API everything else uses to run jobs (the HTTP API, the CLI, plugins).

``Scheduler`` wraps a broker and the plugin registry: ``enqueue`` validates a job's parameters
against its kind's model (so a bad request fails at once, in one line) and applies the kind's
defaults (priority, max tries); ``get``/``list``/``cancel``/``requeue``/``dead_letters``; ``result``
returns the stored result or raises why there is none; ``events`` is an async iterator of a job's
progress and status events, resumable from an event id (SSE ``Last-Event-ID``); ``wait`` and
``wait_all`` block until jobs finish.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .broker import Broker
from .constants import IDEMPOTENCY_TTL_S, PRIORITY_MAX
from .errors import (
    ConfigError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ResultExpired,
    ResultNotReady,
    SerializationError,
)
from .jobs import Job, JobEvent, JobStatus, job_events_stream, new_job_id
from .plugin_host import PluginRegistry

EVENT_BLOCK_S = 5.0  # a follower re-checks the job record this often (a missed terminal event)


class Scheduler:
    """Jobs on a broker, checked against a plugin registry (None: any kind, unchecked)."""

    def __init__(self, broker: Broker, registry: PluginRegistry | None = None) -> None:
        self.broker = broker
        self.registry = registry

    async def enqueue(
        self,
        kind: str,
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
        defer_s: float = 0.0,
        max_tries: int | None = None,
        parent_id: str | None = None,
    ) -> Job:
        """Queue a job; with an ``idempotency_key`` already used, return that job instead.
        Raises UnknownKind or InvalidParams (checked against the registry) at once."""
        job, _created = await self.submit(
            kind,
            params,
            priority=priority,
            idempotency_key=idempotency_key,
            idempotency_ttl_s=idempotency_ttl_s,
            defer_s=defer_s,
            max_tries=max_tries,
            parent_id=parent_id,
        )
        return job

    async def submit(
        self,
        kind: str,
        params: BaseModel | Mapping[str, Any] | None = None,
        *,
        priority: int | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
        defer_s: float = 0.0,
        max_tries: int | None = None,
        parent_id: str | None = None,
    ) -> tuple[Job, bool]:
        """Like ``enqueue``, and says whether the job was created (False: the idempotency key
        already named a job, which is returned)."""
        spec = None
        if self.registry is not None:
            _, spec = self.registry.spec(kind)
            values = self.registry.validate(kind, params)
        elif isinstance(params, BaseModel):
            values = params.model_dump(mode="json")
        else:
            values = dict(params or {})
        prio = priority if priority is not None else (spec.priority if spec else None)
        tries = max_tries if max_tries is not None else (spec.max_tries if spec else None)
        if prio is not None and not 0 <= prio <= PRIORITY_MAX:
            raise ConfigError(f"priority must be between 0 and {PRIORITY_MAX}, got {prio}")
        if tries is not None and tries < 1:
            raise ConfigError(f"max_tries must be at least 1, got {tries}")
        job = Job(id=new_job_id(), kind=kind, params=values, parent_id=parent_id, idempotency_key=idempotency_key)
        if prio is not None:
            job = job.evolve(priority=prio)
        if tries is not None:
            job = job.evolve(max_tries=tries)
        return await self.broker.enqueue(job, defer_s=defer_s, idempotency_ttl_s=idempotency_ttl_s)

    async def get(self, job_id: str) -> Job:
        job = await self.broker.get_job(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    async def list(
        self, *, kind: str | None = None, status: JobStatus | str | None = None, limit: int = 50
    ) -> builtins.list[Job]:
        """Newest first."""
        if status is not None:
            try:
                status = JobStatus(status)
            except ValueError:
                raise ConfigError(
                    f"unknown job status {status!r}; one of {', '.join(s.value for s in JobStatus)}"
                ) from None
        return await self.broker.list_jobs(kind=kind, status=status.value if status else None, limit=limit)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued job now, or ask a running one's worker to stop it (``cancel_requested``).
        Cancelling a finished job changes nothing and returns it."""
        return await self.broker.cancel(job_id)

    async def requeue(self, job_id: str) -> Job:
        """Run a failed (dead-lettered) or cancelled job again, with fresh tries."""
        return await self.broker.requeue(job_id)

    async def dead_letters(self, *, limit: int = 100) -> builtins.list[Job]:
        return await self.broker.dead_letters(limit=limit)

    async def result(self, job_id: str) -> Any:
        """The job's result; raises ResultNotReady, JobFailed, JobCancelled or ResultExpired."""
        job = await self.get(job_id)
        if job.status is JobStatus.FAILED:
            raise JobFailed(f"job {job_id} failed: {job.error}")
        if job.status is JobStatus.CANCELLED:
            raise JobCancelled(f"job {job_id} was cancelled")
        if job.status is not JobStatus.SUCCEEDED:
            raise ResultNotReady(f"job {job_id} is {job.status.value}")
        found, value = await self.broker.result(job_id)
        if not found:
            raise ResultExpired(f"the result of job {job_id} has expired")
        return value

    async def events(self, job_id: str, *, after: str = "0", follow: bool = True) -> AsyncIterator[JobEvent]:
        """The job's events after ``after``; with ``follow``, waits for new ones and ends after
        the terminal status event. Raises JobNotFound for an unknown job."""
        await self.get(job_id)
        stream = job_events_stream(job_id)
        cursor = after or "0"
        while True:
            entries = await self.broker.read(stream, cursor, block_s=EVENT_BLOCK_S if follow else None)
            for entry in entries:
                cursor = entry.id
                try:
                    event = JobEvent.from_entry(entry.id, entry.data)
                except SerializationError:
                    continue
                yield event
                if event.terminal:
                    return
            if not follow:
                return
            if not entries:
                job = await self.broker.get_job(job_id)
                if job is None or job.status.terminal:
                    return  # expired, or its terminal event was trimmed

    async def wait(self, job_id: str, *, timeout_s: float | None = None) -> Job:
        """The job's record once it has finished; raises TimeoutError after ``timeout_s``."""
        return (await self.wait_all([job_id], timeout_s=timeout_s))[0]

    async def wait_all(self, job_ids: Sequence[str], *, timeout_s: float | None = None) -> builtins.list[Job]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        async def one(job_id: str) -> Job:
            job = await self.get(job_id)
            if job.status.terminal:
                return job
            async for _ev in self.events(job_id):
                pass
            return await self.get(job_id)

        async def all_() -> builtins.list[Job]:
            # One after the other: the total wait is the same, and it holds one connection.
            return [await one(i) for i in job_ids]

        if deadline is None:
            return await all_()
        return await asyncio.wait_for(all_(), max(0.0, deadline - time.monotonic()))


__all__ = ["Scheduler"]
