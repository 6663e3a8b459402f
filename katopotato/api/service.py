"""The service's parts, built from one ``Settings`` and owned by one async context manager.

``Service.open(settings)`` opens the database (migrating it), the search backend, the event log,
the session store, the job scheduler (broker, blob store, plugin registry), the session runner
(``DistributedRunner``: sessions as jobs on the scheduler), the embedded workers and cron
(``settings.workers`` of them), and the outputs (transcript sinks); it re-attaches to or
interrupts the sessions a previous process left running, and closes everything in reverse order
on exit: the runner first (while the workers can still commit in-flight segments), then the
sinks, then the workers drain, then the broker. The HTTP app (app.py) only borrows it, so tests
and ``katopotato serve`` build it the same way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import text

from couchpotato import __version__

from ..auth import SCOPES, TokenStore
from ..blobs import BlobStore, blobs_from_url
from ..broker import Broker, broker_from_url
from ..db import Database
from ..distributed import DistributedRunner
from ..embedded import EmbeddedWorkers
from ..entities import extractor_from_url
from ..errors import ConfigError
from ..events import EventLog
from ..identity import Identities
from ..metrics import Metrics
from ..outputs import Outputs
from ..plugin import PRINCIPAL
from ..plugin_host import PluginRegistry, load_plugins
from ..scheduler import Scheduler
from ..search import SearchBackend, open_search
from ..sessions import SessionRunner, SessionStore
from ..settings import Settings

log = logging.getLogger(__name__)
RunnerFactory = Callable[[SessionStore, Settings], SessionRunner]


@dataclass
class Service:
    """Everything a request handler may use."""

    settings: Settings
    db: Database
    tokens: TokenStore
    events: EventLog
    search: SearchBackend
    store: SessionStore
    runner: SessionRunner
    metrics: Metrics
    scheduler: Scheduler
    registry: PluginRegistry
    blobs: BlobStore
    outputs: Outputs
    workers: EmbeddedWorkers | None = None
    identities: Identities | None = None  # OIDC sign-in and bearer JWTs, when an issuer is configured
    recovered: list[str] = field(default_factory=list)
    openapi_document: dict[str, Any] = field(default_factory=dict)
    _shut: bool = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        runner_factory: RunnerFactory | None = None,
        registry: PluginRegistry | None = None,
    ) -> AsyncIterator[Service]:
        if settings.workers == 0 and not settings.broker_is_shared:
            raise ConfigError(
                "with the memory:// broker the embedded workers are the only ones: run at least one "
                "(--workers 1), or share a Redis broker with katopotato worker processes (COUCHPOTATO_BROKER)"
            )
        async with contextlib.AsyncExitStack() as stack:
            registry = registry or load_plugins(settings=settings.plugin_settings())
            db = Database(settings.database_url)
            stack.push_async_callback(db.close)
            await db.start(registry.migrations())
            search = open_search(settings.search_url, db, extractor=extractor_from_url(settings.entities_url))
            await search.start()
            stack.push_async_callback(search.close)
            metrics = Metrics()
            events = EventLog(db)
            store = SessionStore(db, events, search, metrics)
            check_oidc(settings, registry)
            broker: Broker = await stack.enter_async_context(broker_from_url(settings.broker_url))
            blobs: BlobStore = await stack.enter_async_context(blobs_from_url(settings.blobs_url))
            scheduler = Scheduler(broker, registry)
            if runner_factory is not None:
                runner = runner_factory(store, settings)
            else:
                runner = scheduled_runner(store, settings, scheduler, blobs, metrics=metrics)
            outputs = Outputs(db, events, broker, blobs, settings=settings.docsweb, guard=settings.core().guard())
            workers = await stack.enter_async_context(
                EmbeddedWorkers(
                    scheduler,
                    registry,
                    blobs,
                    count=settings.workers,
                    capture_slots=settings.capture_slots,
                    shared_broker=settings.broker_is_shared,
                )
            )
            service = cls(
                settings,
                db,
                TokenStore(db, settings.api_token, registry.scopes()),
                events,
                search,
                store,
                runner,
                metrics,
                scheduler,
                registry,
                blobs,
                outputs,
                workers,
            )
            if settings.oidc.enabled:
                service.identities = Identities(settings.oidc, db)
                stack.push_async_callback(service.identities.close)
            stack.push_async_callback(service.shutdown)
            service.recovered = await runner.recover()
            if service.recovered:
                log.warning("marked %d sessions interrupted: %s", len(service.recovered), ", ".join(service.recovered))
            await outputs.start()
            yield service

    @property
    def broker(self) -> Broker:
        return self.scheduler.broker

    async def shutdown(self) -> None:
        """Stop or hand over running sessions, stop the sinks, then end live streams; idempotent."""
        if self._shut:
            return
        self._shut = True
        try:
            await self.runner.close()
        finally:
            try:
                await self.outputs.close()
            finally:
                self.events.close()

    async def ping(self) -> bool:
        try:
            async with self.db.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception as e:
            log.warning("database ping failed: %s", e)
            return False

    async def refresh_metrics(self) -> None:
        running = self.runner.running()
        depth, asr_s, audio_s = 0, 0.0, 0.0
        for sid in running:
            info = self.runner.live(sid)
            if info is not None:
                depth += info.queue_depth
                asr_s += info.asr_s
                audio_s += info.duration_s
        self.metrics.refresh(
            sessions_by_status=await self.store.count_by_status(),
            queue_depth=depth,
            realtime_factor=(asr_s / audio_s) if audio_s > 0 else None,
            sse_subscribers=self.events.subscriber_count,
        )

    @property
    def version(self) -> str:
        return __version__


def check_oidc(settings: Settings, registry: PluginRegistry) -> None:
    """The OIDC group map grants only scopes that exist (the host's and the plugins'), and the
    first-login group is one of it."""
    oidc = settings.oidc
    if not oidc.enabled:
        return
    known = [*SCOPES, *sorted(registry.scopes())]
    unknown = oidc.unknown_scopes(set(known))
    if unknown:
        raise ConfigError(
            f"COUCHPOTATO_OIDC_GROUP_SCOPES grants unknown scopes {', '.join(unknown)}; scopes are {', '.join(known)}"
        )
    if oidc.first_login_group and oidc.first_login_group not in oidc.group_scopes:
        raise ConfigError(
            f"COUCHPOTATO_OIDC_FIRST_LOGIN_GROUP={oidc.first_login_group!r} is not a group of "
            "COUCHPOTATO_OIDC_GROUP_SCOPES (it would grant nothing)"
        )


def scheduled_runner(
    store: SessionStore,
    settings: Settings,
    scheduler: Scheduler,
    blobs: BlobStore,
    *,
    metrics: Metrics | None = None,
) -> DistributedRunner:
    core = settings.core()
    return DistributedRunner(
        store,
        scheduler,
        blobs,
        core.guard(),
        model=core.asr_model(),
        blobs_dir=settings.blobs_dir,
        shared_broker=settings.broker_is_shared,
        metrics=metrics,
    )


SERVICE = web.AppKey("katopotato.service", Service)

__all__ = ["PRINCIPAL", "SERVICE", "RunnerFactory", "Service", "scheduled_runner"]
