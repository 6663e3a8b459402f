"""The job workers ``katopotato serve`` runs inside its own process, and its cron scheduler.

``EmbeddedWorkers`` is one async context manager owning:

- a **capture worker** (kind ``transcription.capture``, ``capture_slots`` sessions at once): capture
  sessions are long-running jobs, so they get slots of their own and can never take every slot
  that ASR needs;
- ``workers`` **job workers** (``transcription.asr`` and every plugin job, ``DEFAULT_CONCURRENCY``
  each): the segments of live sessions (priority LIVE) go ahead of plugin jobs;
- the **cron scheduler** (schedules fire once per tick across every scheduler on the broker).

``workers=0`` runs none of them: the API only, the jobs left to ``katopotato worker`` processes on
a shared (Redis) broker. With the in-process ``memory://`` broker no other process can take the
work, so the embedded workers are all there is; on shutdown (``__aexit__``) they drain like
``katopotato worker`` does on SIGTERM. Exit it only after the session runner has closed, so the
sessions it stops still have workers to commit their in-flight segments.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from types import TracebackType
from typing import Self

from .blobs import BlobStore
from .constants import DEFAULT_CONCURRENCY, DRAIN_GRACE_S, HANDOVER_GRACE_S
from .cron import CronScheduler
from .plugin_host import PluginRegistry
from .scheduler import Scheduler
from .worker import ASR_KINDS, CAPTURE_KINDS, Worker

log = logging.getLogger(__name__)

# memory:// : nothing can take a session over, so a draining worker does not wait for a hand-over
MEMORY_DRAIN_GRACE_S = 3.0


class EmbeddedWorkers:
    """Workers and cron inside the API process (see the module docstring).

    Attributes:
        workers: the job workers (ASR and plugins) started; empty when ``count`` is 0.
        capture: the capture worker, or None.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        registry: PluginRegistry,
        blobs: BlobStore,
        *,
        count: int,
        capture_slots: int,
        shared_broker: bool,
        name: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.scheduler = scheduler
        self.registry = registry
        self.blobs = blobs
        self.count = count
        self.capture_slots = capture_slots
        self.shared_broker = shared_broker
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-serve-{uuid.uuid4().hex[:4]}"
        self.concurrency = concurrency
        self.workers: list[Worker] = []
        self.capture: Worker | None = None
        self._stack = contextlib.AsyncExitStack()

    def _worker(self, kinds: list[str], concurrency: int, role: str) -> Worker:
        shared = self.shared_broker
        return Worker(
            self.scheduler.broker,
            self.registry,
            blobs=self.blobs,
            kinds=kinds,
            concurrency=concurrency,
            name=f"{self.name}-{role}",
            drain_grace_s=DRAIN_GRACE_S if shared else MEMORY_DRAIN_GRACE_S,
            handover_grace_s=HANDOVER_GRACE_S if shared else 0.0,
        )

    async def __aenter__(self) -> Self:
        if self.count <= 0:
            return self
        known = self.registry.kinds()
        capture = [k for k in known if k in CAPTURE_KINDS]
        others = [k for k in known if k not in CAPTURE_KINDS]
        try:
            # entered first, so it is drained last: ASR workers stop after the captures handed back
            for i in range(self.count):
                w = self._worker(others, self.concurrency, f"jobs{i + 1}")
                self.workers.append(await self._stack.enter_async_context(w))
            if capture:
                self.capture = await self._stack.enter_async_context(
                    self._worker(capture, self.capture_slots, "capture")
                )
            await self._stack.enter_async_context(CronScheduler(self.scheduler, self.registry.schedules()))
        except BaseException:
            await self._stack.aclose()
            raise
        asr = [k for k in others if k in ASR_KINDS]
        log.info(
            "embedded workers: %d × (%s) ×%d, capture ×%d%s",
            self.count,
            ", ".join(others),
            self.concurrency,
            self.capture_slots if capture else 0,
            "" if asr else " (no ASR kind registered)",
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


__all__ = ["EmbeddedWorkers"]
