"""A session's sinks: built from their specs, each run by its own ``SinkRunner`` task.

The service's wiring, in short::

    specs = parse_outputs(body["outputs"])                  # at POST /v1/sessions: 422 on error
    await validate_outputs(specs, settings=..., blobs=..., guard=...)   # SinkConfigError → 400
    manager = SinkManager(session_id, source, store, settings=..., blobs=..., guard=..., title=...)
    await manager.start(specs)                               # also after a restart: same specs, same ids
    await manager.add(spec)                                  # a sink added to a running session
    manager.status()                                         # [SinkStatus.to_dict()] for the API
    await manager.close()                                    # at shutdown (cursors stay stored)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from couchpotato.errors import CouchPotatoError
from couchpotato.urlguard import UrlGuard

from .base import OrderKey, Sink, SinkState, SinkStatus, event_order
from .cursors import CursorStore
from .errors import SinkConfigError
from .files import BlobWriter, FileSink, file_key
from .gdoc import GDocSink, document_url
from .runner import EventSource, SinkRunner
from .settings import DocsWebSettings
from .specs import FileSpec, GDocSpec, SinkSpec, WebhookSpec, with_ids
from .webhook import WebhookSink, redact

log = logging.getLogger(__name__)


def build_sink(
    spec: SinkSpec,
    *,
    session_id: str,
    settings: DocsWebSettings,
    blobs: BlobWriter | None = None,
    guard: UrlGuard | None = None,
) -> Sink:
    """The sink a spec describes (the spec must have its id: see ``specs.with_ids``)."""
    if isinstance(spec, GDocSpec):
        return GDocSink(spec, session_id=session_id, settings=settings)
    if isinstance(spec, WebhookSpec):
        return WebhookSink(spec, session_id=session_id, guard=guard or UrlGuard())
    if isinstance(spec, FileSpec):
        if blobs is None:
            raise SinkConfigError("a file output needs a blob store")
        return FileSink(spec, session_id=session_id, blobs=blobs)
    raise SinkConfigError(f"unknown output type {getattr(spec, 'type', spec)!r}")


async def validate_outputs(
    specs: Iterable[SinkSpec],
    *,
    settings: DocsWebSettings,
    blobs: BlobWriter | None = None,
    guard: UrlGuard | None = None,
) -> None:
    """What a spec's model cannot check: Google credentials are there, a webhook's host is allowed
    (it resolves, to public addresses or allowlisted ones), a blob store exists. Raises
    SinkConfigError with a one-line message."""
    guard = guard or UrlGuard()
    for spec in specs:
        if isinstance(spec, GDocSpec) and spec.user_token is None:
            path = settings.google_credentials
            if path is None:
                raise SinkConfigError(
                    "a gdoc output needs Google credentials: the service has no GOOGLE_APPLICATION_CREDENTIALS, "
                    "so give the output a user_token"
                )
            if not await asyncio.to_thread(path.is_file):
                raise SinkConfigError(f"GOOGLE_APPLICATION_CREDENTIALS names {path}, which is not a file")
        elif isinstance(spec, WebhookSpec):
            try:
                await guard.check_url(spec.url)
            except CouchPotatoError as e:
                raise SinkConfigError(f"webhook {redact(spec.url)}: {e}") from e
        elif isinstance(spec, FileSpec) and blobs is None:
            raise SinkConfigError("file outputs need a blob store, and this service has none")


def target_of(spec: SinkSpec, session_id: str, data: Mapping[str, Any] | None = None) -> str:
    """Where a sink delivers, as ``SinkStatus.target`` says it, from its spec and stored data."""
    if isinstance(spec, GDocSpec):
        url = (data or {}).get("url")
        if url:
            return str(url)
        return document_url(spec.document_id) if spec.document_id else "a new Google Doc"
    if isinstance(spec, WebhookSpec):
        return redact(spec.url)
    return file_key(spec, session_id)


async def stored_statuses(store: CursorStore, session_id: str, specs: Sequence[SinkSpec]) -> list[SinkStatus]:
    """The sinks of a session as the cursor store has them: for an API process that does not run
    them (another worker does). Specs need their ids."""
    states = await store.list(session_id)
    out = []
    for spec in specs:
        assert spec.id is not None
        state = states.get(spec.id) or SinkState()
        out.append(SinkStatus(spec.id, spec.type, target_of(spec, session_id, state.data), state))
    return out


class SinkManager:
    """Runs the sinks of one session; ``async with`` closes them."""

    def __init__(
        self,
        session_id: str,
        source: EventSource,
        store: CursorStore,
        *,
        settings: DocsWebSettings | None = None,
        blobs: BlobWriter | None = None,
        guard: UrlGuard | None = None,
        title: str = "",
        order: OrderKey = event_order,
    ) -> None:
        self.session_id = session_id
        self.source = source
        self.store = store
        self.settings = settings or DocsWebSettings()
        self.blobs = blobs
        self.guard = guard or UrlGuard()
        self.title = title
        self.order = order
        self.runners: dict[str, SinkRunner] = {}
        self._tasks: dict[str, asyncio.Task[object]] = {}

    async def start(self, specs: Sequence[SinkSpec]) -> list[SinkStatus]:
        """Start several sinks (ids are given to those without, checked unique first)."""
        with_ids(specs, existing=list(self.runners))
        return [await self.add(spec) for spec in specs]

    async def add(self, spec: SinkSpec) -> SinkStatus:
        """Start one sink, from the start of the transcript or from its stored cursor. Raises
        DuplicateSink when the session runs a sink with that id already."""
        (spec,) = with_ids([spec], existing=list(self.runners))
        assert spec.id is not None
        sink = build_sink(spec, session_id=self.session_id, settings=self.settings, blobs=self.blobs, guard=self.guard)
        runner = SinkRunner(self.session_id, sink, self.source, self.store, title=self.title, order=self.order)
        self.runners[spec.id] = runner
        self._tasks[spec.id] = asyncio.create_task(self._run(runner), name=f"docsweb-{self.session_id}-{spec.id}")
        return runner.status

    async def _run(self, runner: SinkRunner) -> object:
        try:
            return await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s sink %s stopped on an unexpected error", self.session_id, runner.sink.id)
            raise
        finally:
            await runner.sink.close()

    def status(self) -> list[SinkStatus]:
        """Every sink of the session, as this process sees it now."""
        return [r.status for r in self.runners.values()]

    async def wait(self, timeout_s: float | None = None) -> list[SinkStatus]:
        """Until every sink has delivered the ``end`` event (or its source ended)."""
        tasks = list(self._tasks.values())
        if tasks:
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*tasks, return_exceptions=True)
        return self.status()

    async def remove(self, sink_id: str) -> bool:
        """Stop a sink (its cursor stays stored: adding the same spec again resumes it)."""
        task = self._tasks.pop(sink_id, None)
        runner = self.runners.pop(sink_id, None)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if runner is not None:
            runner.state = runner.state.evolve(health="stopped")
        return True

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for runner in self.runners.values():
            if runner.state.health not in ("done",):
                runner.state = runner.state.evolve(health="stopped")
        self._tasks.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


__all__ = ["SinkManager", "build_sink", "stored_statuses", "target_of", "validate_outputs"]
