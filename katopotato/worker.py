"""The worker: claims jobs from the broker and runs them, any number per machine.

A ``Worker`` runs up to ``concurrency`` jobs at once, of the kinds it was given (job kinds, plugin
names, or the groups ``capture``, ``asr`` and ``plugins``). Idle, it blocks on the broker's wake-up
signal instead of polling. One heartbeat loop renews the leases of all its jobs; a lease found
cancelled stops its job (cancelled), a lease found lost stops it silently (another worker has it).

A job's outcome: its return value (JSON, or a pydantic model) is the result; ``Retry`` queues it
again after ``defer_s``; ``Abort`` or invalid parameters fail it for good; any other exception is
retried with exponential backoff until the kind's ``max_tries``, then dead-lettered.

Shutdown (``stop()``, or SIGTERM/SIGINT with ``handle_signals``): stop claiming; hand back at once
the jobs of long-running kinds (capture sessions: another worker continues them); give the others
``drain_grace_s`` to finish, then hand them back too. Handed-back jobs keep their try count.

A long-running job that can hand its work over itself (a capture session) is told of the shutdown
through its ``Drain`` (``katopotato.drain``) instead of being cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .blobs import BlobStore
from .broker import Broker, Lease, LeaseState
from .constants import (
    DEFAULT_CONCURRENCY,
    DRAIN_GRACE_S,
    HANDOVER_GRACE_S,
    HEARTBEAT_INTERVAL_S,
    IDLE_WAIT_MAX_S,
    RETRY_BACKOFF_BASE_S,
    RETRY_BACKOFF_MAX_S,
    VISIBILITY_TIMEOUT_S,
)
from .drain import Drain, bind_drain, current_drain
from .errors import Abort, BrokerError, ConfigError, Retry, one_line
from .plugin import JobContext, LogNotifier, Notifier
from .plugin_host import PluginRegistry
from .scheduler import Scheduler

log = logging.getLogger("katopotato.worker")

CAPTURE_KINDS = ("transcription.capture",)
ASR_KINDS = ("transcription.asr",)


def resolve_kinds(registry: PluginRegistry, names: Sequence[str] | None) -> list[str]:
    """Job kinds from ``--kinds`` names: kinds, plugin names, or capture / asr / plugins."""
    known = registry.kinds()
    if not names:
        return known
    out: list[str] = []
    for name in names:
        if name == "capture":
            picked = [k for k in CAPTURE_KINDS if k in known]
        elif name == "asr":
            picked = [k for k in ASR_KINDS if k in known]
        elif name == "plugins":
            picked = [k for k in known if k not in CAPTURE_KINDS + ASR_KINDS]
        elif name in known:
            picked = [name]
        else:
            picked = [k for k in known if k.partition(".")[0] == name]
        if not picked:
            raise ConfigError(f"--kinds {name!r} matches no job kind; known: capture, asr, plugins, {', '.join(known)}")
        out += [k for k in picked if k not in out]
    return out


def backoff_s(tries: int, base_s: float = RETRY_BACKOFF_BASE_S, max_s: float = RETRY_BACKOFF_MAX_S) -> float:
    """Delay before the next try after ``tries`` failed ones: base, 2·base, 4·base, … capped."""
    return float(min(max_s, base_s * 2 ** max(0, tries - 1)))


@dataclass
class WorkerStats:
    """What a worker did."""

    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0
    started_at: float = field(default_factory=time.time)


@dataclass
class _Running:
    lease: Lease
    task: asyncio.Task[None]
    long_running: bool
    drain: Drain
    stop_reason: str = ""  # "cancel", "lost", "drain"


class Worker:
    """Runs jobs of ``kinds`` from ``broker``.

    Attributes:
        name: unique worker name (host, pid and a random suffix by default).
        kinds: the job kinds it claims.
        concurrency: jobs run at once.
        visibility_s: lease length; a job whose worker stops renewing it is retried elsewhere.
        heartbeat_s: how often leases are renewed.
        drain_grace_s: time in-flight jobs get to finish on shutdown.
        handover_grace_s: time a long-running job that hands over itself gets on shutdown.
    """

    def __init__(
        self,
        broker: Broker,
        registry: PluginRegistry,
        *,
        blobs: BlobStore,
        kinds: Sequence[str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        name: str | None = None,
        notifier: Notifier | None = None,
        database: Any = None,
        visibility_s: float = VISIBILITY_TIMEOUT_S,
        heartbeat_s: float | None = None,
        drain_grace_s: float = DRAIN_GRACE_S,
        retry_backoff_base_s: float = RETRY_BACKOFF_BASE_S,
        handover_grace_s: float = HANDOVER_GRACE_S,
    ) -> None:
        if concurrency < 1:
            raise ConfigError("worker concurrency must be at least 1")
        if visibility_s <= 0:
            raise ConfigError("the visibility timeout must be positive")
        self.broker = broker
        self.registry = registry
        self.scheduler = Scheduler(broker, registry)
        self.blobs = blobs
        self.kinds = resolve_kinds(registry, kinds)
        self.concurrency = concurrency
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.notifier: Notifier = notifier or LogNotifier()
        self.database = database
        self.visibility_s = visibility_s
        self.heartbeat_s = heartbeat_s or min(HEARTBEAT_INTERVAL_S, visibility_s / 3)
        self.drain_grace_s = drain_grace_s
        self.handover_grace_s = handover_grace_s
        self.retry_backoff_base_s = retry_backoff_base_s
        self.stats = WorkerStats()
        self._limits = {}
        for kind in self.kinds:
            _, spec = registry.spec(kind)
            if spec.concurrency:
                self._limits[kind] = spec.concurrency
        self._running: dict[str, _Running] = {}
        self._lent = 0
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._main: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        self._main = asyncio.create_task(self.run(), name=f"worker {self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if self._main is not None:
            await self._main

    def stop(self) -> None:
        """Begin a graceful shutdown (see the module docstring)."""
        self._stopping.set()

    def handle_signals(self) -> None:
        """Stop gracefully on SIGTERM and SIGINT (opt-in, so a worker can be embedded)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stop)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @contextlib.contextmanager
    def lend_slot(self) -> Iterator[None]:
        """While a job waits for its children, its slot runs other jobs."""
        self._lent += 1
        self._changed.set()
        try:
            yield
        finally:
            self._lent -= 1

    async def run(self, *, burst: bool = False) -> None:
        """Claim and run jobs until ``stop()`` (or, with ``burst``, until nothing is left to do)."""
        if not self.kinds:
            raise ConfigError("this worker has no job kinds to run")
        log.info("worker %s: %s ×%d", self.name, ", ".join(self.kinds), self.concurrency)
        beat = asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat {self.name}")
        try:
            await self._claim_loop(burst)
            await self._drain()
        finally:
            if self._running:  # cancelled from outside: hand everything back
                await self._stop_all("drain")
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _claim_loop(self, burst: bool) -> None:
        while not self._stopping.is_set():
            free = self.concurrency + self._lent - len(self._running)
            if free <= 0:
                self._changed.clear()
                await self._until(self._changed.wait())
                continue
            try:
                leases = await self.broker.claim(
                    self.name, self.kinds, max_jobs=free, limits=self._limits, visibility_s=self.visibility_s
                )
            except BrokerError as e:
                log.warning("worker %s: claim failed: %s", self.name, e)
                await self._until(asyncio.sleep(1.0))
                continue
            for lease in leases:
                self._start(lease)
            if leases:
                continue
            if burst and not self._running:
                return
            self._changed.clear()
            await self._until(self.broker.wait_for_work(self.name, IDLE_WAIT_MAX_S), self._changed.wait())

    async def _until(self, *aws: Any) -> None:
        """Wait for the first of ``aws`` or for stop."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in [*tasks, stop]:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, stop, return_exceptions=True)

    def _start(self, lease: Lease) -> None:
        _, spec = self.registry.spec(lease.job.kind)
        drain = Drain()
        task = asyncio.create_task(self._execute(lease, drain), name=f"job {lease.job.kind} {lease.job.id}")
        running = _Running(lease, task, spec.long_running, drain)
        drain._stop = functools.partial(self._stop_job, running, "drain")
        self._running[lease.job.id] = running
        task.add_done_callback(functools.partial(self._finished, lease.job.id))

    def _finished(self, job_id: str, _task: object = None) -> None:
        self._running.pop(job_id, None)
        self._changed.set()

    async def _drain(self) -> None:
        if not self._running:
            return
        log.info("worker %s: draining %d job(s)", self.name, len(self._running))
        t0 = time.monotonic()
        for r in list(self._running.values()):
            if r.long_running and r.drain.handover:
                r.drain.requested.set()
            elif r.long_running:
                self._stop_job(r, "drain")
        pending = [r.task for r in self._running.values()]
        if pending:
            await asyncio.wait(pending, timeout=self.drain_grace_s)
        handing = [r.task for r in self._running.values() if r.drain.handover and not r.stop_reason]
        if handing:
            left = self.handover_grace_s - (time.monotonic() - t0)
            if left > 0:
                log.info("worker %s: waiting up to %.0f s for %d job(s) to hand over", self.name, left, len(handing))
                await asyncio.wait(handing, timeout=left)
        await self._stop_all("drain")

    async def _stop_all(self, reason: str) -> None:
        tasks = []
        for r in list(self._running.values()):
            self._stop_job(r, reason)
            tasks.append(r.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _stop_job(self, r: _Running, reason: str) -> None:
        if not r.stop_reason:
            r.stop_reason = reason
        r.task.cancel()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            running = list(self._running.values())
            if not running:
                continue
            try:
                states = await self.broker.heartbeat([r.lease for r in running], visibility_s=self.visibility_s)
            except BrokerError as e:
                log.warning("worker %s: heartbeat failed: %s", self.name, e)
                continue
            for r in running:
                state = states.get(r.lease.job.id)
                if state is LeaseState.CANCEL:
                    self._stop_job(r, "cancel")
                elif state is LeaseState.LOST:
                    log.warning("worker %s: lost the lease of job %s", self.name, r.lease.job.id)
                    self._stop_job(r, "lost")

    # --- running one job ----------------------------------------------------------------------

    async def _execute(self, lease: Lease, drain: Drain) -> None:
        job = lease.job
        plugin, spec = self.registry.spec(job.kind)
        bind_drain(drain)

        async def report(done: float, total: float | None, message: str) -> None:
            state = await self.broker.progress(lease, done, total, message)
            r = self._running.get(job.id)
            if r is not None and state is LeaseState.CANCEL:
                self._stop_job(r, "cancel")

        ctx = JobContext(
            job,
            plugin,
            scheduler=self.scheduler,
            blobs=self.blobs,
            notifier=self.notifier,
            settings=self.registry.settings_for(plugin.name),
            database=self.database,
            report=report,
            slots=self,
            last_try=job.tries >= job.max_tries,
        )
        t0 = time.perf_counter()
        try:
            try:
                params = spec.params.model_validate(job.params)
            except ValidationError as e:
                raise Abort(f"bad parameters: {e.errors()[0].get('msg', 'invalid')}") from e
            coro = spec.fn(ctx, params)
            result = await (asyncio.wait_for(coro, spec.timeout_s) if spec.timeout_s else coro)
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
        except asyncio.CancelledError:
            await self._stopped(lease)
            r = self._running.get(job.id)
            if r is None or not r.stop_reason:
                raise
            return
        except Retry as e:
            self.stats.retried += 1
            await self._safe(self.broker.fail(lease, str(e), retry_in_s=e.defer_s))
            return
        except Abort as e:
            self.stats.failed += 1
            await self._safe(self.broker.fail(lease, str(e) or "aborted", retry_in_s=None))
            return
        except Exception as e:
            error = one_line(e)
            log.warning("job %s %s try %d failed: %s", job.kind, job.id, job.tries, error)
            status = await self._safe(
                self.broker.fail(lease, error, retry_in_s=backoff_s(job.tries, self.retry_backoff_base_s))
            )
            if status == "failed":
                self.stats.failed += 1
            else:
                self.stats.retried += 1
            return
        try:
            ok = await self.broker.succeed(lease, result, result_ttl_s=spec.result_ttl_s)
        except BrokerError as e:
            log.warning("job %s %s: cannot store its result: %s", job.kind, job.id, e)
            return
        except Exception as e:  # not JSON
            await self._safe(self.broker.fail(lease, f"bad result: {one_line(e)}", retry_in_s=None))
            self.stats.failed += 1
            return
        if ok:
            self.stats.succeeded += 1
            log.debug("job %s %s done in %.3f s", job.kind, job.id, time.perf_counter() - t0)
        else:
            self.stats.lost += 1

    async def _stopped(self, lease: Lease) -> None:
        r = self._running.get(lease.job.id)
        reason = r.stop_reason if r is not None else "drain"
        if reason == "cancel":
            self.stats.cancelled += 1
            await self._safe(self.broker.finish_cancelled(lease))
        elif reason == "lost":
            self.stats.lost += 1
        else:
            self.stats.released += 1
            await self._safe(self.broker.release(lease))

    async def _safe(self, aw: Any) -> Any:
        try:
            return await asyncio.shield(aw)
        except BrokerError as e:
            log.warning("worker %s: %s", self.name, e)
            return None


__all__ = ["Drain", "Worker", "WorkerStats", "backoff_s", "current_drain", "resolve_kinds"]
