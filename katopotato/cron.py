"""Cron schedules that fire once per tick across all schedulers, however many processes run one.

Every scheduler process (``katopotato serve`` runs one) checks its schedules each
``check_interval_s``; for a schedule whose latest tick is due, it enqueues the job with the
idempotency key ``cron:<schedule>:<tick>``. The broker creates a job for the first such enqueue and
returns that same job to every later one, so a tick fires once however many schedulers saw it, and
a scheduler that restarts within the grace period does not fire it again. A tick missed by more
than ``misfire_grace_s`` (every scheduler was down) is skipped, not caught up.

Expressions are croniter's: five fields (minute resolution), or six with seconds last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from croniter import croniter

from .constants import CRON_CHECK_INTERVAL_S, CRON_MISFIRE_GRACE_S, IDEMPOTENCY_TTL_S
from .errors import ConfigError, KatoPotatoError
from .jobs import Job
from .keys import cron_job_key
from .plugin_host import ScheduledJob
from .scheduler import Scheduler

log = logging.getLogger("katopotato.cron")


@dataclass(frozen=True)
class Fired:
    """One tick of one schedule: the job it made, and whether this scheduler created it."""

    schedule: str
    tick: float
    job: Job
    created: bool


def latest_tick(cron: str, now: float) -> float:
    """The most recent tick of ``cron`` at or before ``now`` (Unix seconds, UTC)."""
    it = croniter(cron, now + 1e-6)
    return float(it.get_prev(float))


class CronScheduler:
    """Fires schedules through a ``Scheduler``; run with ``async with`` or ``await run()``."""

    def __init__(
        self,
        scheduler: Scheduler,
        schedules: Sequence[ScheduledJob],
        *,
        check_interval_s: float = CRON_CHECK_INTERVAL_S,
        misfire_grace_s: float = CRON_MISFIRE_GRACE_S,
    ) -> None:
        for s in schedules:
            if not croniter.is_valid(s.cron):
                raise ConfigError(f"schedule {s.name}: bad cron expression {s.cron!r}")
        self.scheduler = scheduler
        self.schedules = list(schedules)
        self.check_interval_s = check_interval_s
        self.misfire_grace_s = misfire_grace_s
        self._done: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def tick(self, now: float | None = None) -> list[Fired]:
        """Fire every schedule whose latest tick is due and not yet fired from here."""
        now = time.time() if now is None else now
        fired = []
        for s in self.schedules:
            tick = latest_tick(s.cron, now)
            if now - tick > self.misfire_grace_s or self._done.get(s.name, -1.0) >= tick:
                continue
            key = cron_job_key(s.name, tick)
            ttl = max(IDEMPOTENCY_TTL_S, 2 * self.misfire_grace_s)
            job, created = await self.scheduler.submit(s.kind, s.params, idempotency_key=key, idempotency_ttl_s=ttl)
            self._done[s.name] = tick
            fired.append(Fired(s.name, tick, job, created))
            if created:
                log.info("cron %s fired %s (job %s)", s.name, s.kind, job.id)
        return fired

    async def run(self) -> None:
        """Check every ``check_interval_s`` until cancelled; a failing check is logged, not fatal."""
        while True:
            try:
                await self.tick()
            except KatoPotatoError as e:
                log.warning("cron check failed: %s", e)
            await asyncio.sleep(self.check_interval_s - (time.time() % self.check_interval_s))

    async def __aenter__(self) -> CronScheduler:
        self._task = asyncio.create_task(self.run(), name="cron")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


__all__ = ["CronScheduler", "Fired", "latest_tick"]
