"""Outputs of sessions: the transcript sinks of ``docsweb`` (Google Docs, webhooks, files).

A session asks for outputs when it is created (``POST /v1/sessions {…, "outputs": [...]}``) or
later (``POST /v1/sessions/{id}/outputs``). Each output is one row of ``session_outputs``: its spec
as ``docsweb.storage_dict`` (secrets included: clients only ever see ``public_dict``) and its
durable state (the docsweb cursor and the sink's own facts), written by ``DatabaseCursorStore``
in the service's database, so the cursor survives a restart with the transcript it points into.

``Outputs`` runs them. Every ``SCAN_INTERVAL_S`` (and at once when a session gets an output) it
looks for outputs that have not delivered the ``end`` event yet; for each of their sessions it
takes a **lease** in the broker's keyed state (``outputs-lease:<session>``: a compare-and-set
with a server-side expiry of ``LEASE_TTL_S``, renewed every scan), so exactly one API process runs
a session's sinks however many run; the holder starts a ``docsweb.SinkManager`` reading the
session's durable event log (``EventLog.subscribe``; event ids 1, 2, 3… are the cursors). A
process that stops releases its leases; one that dies loses them after ``LEASE_TTL_S``, and another
process (or the same one restarted) resumes every sink from its stored cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from couchpotato.errors import SerializationError as CoreSerializationError
from couchpotato.records import Event, event_from_dict
from couchpotato.urlguard import UrlGuard
from docsweb import (
    OUTPUTS,
    CursorStoreError,
    DocsWebSettings,
    DuplicateSink,
    SinkManager,
    SinkSpec,
    SinkState,
    SinkStatus,
    parse_outputs,
    public_dict,
    storage_dict,
    target_of,
    validate_outputs,
    with_ids,
)

from .blobs import BlobStore
from .broker import Broker
from .db import Database, OutputRow, SessionRow
from .errors import BrokerError
from .events import EventLog
from .keys import outputs_lease_key

log = logging.getLogger(__name__)

LEASE_TTL_S = 15.0  # a process that stops renewing a session's sink lease loses it after this
SCAN_INTERVAL_S = 2.0  # pending outputs are looked for, and leases renewed, this often
TRANSCRIPT_TYPES = ("session", "segment", "gap", "end")


class DatabaseCursorStore:
    """docsweb's ``CursorStore`` in the service database: a sink's state in its output row."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load(self, session_id: str, sink_id: str) -> SinkState | None:
        try:
            async with self.db.read() as conn:
                raw = (
                    await conn.execute(
                        select(OutputRow.state).where(OutputRow.session_id == session_id, OutputRow.sink_id == sink_id)
                    )
                ).scalar_one_or_none()
        except SQLAlchemyError as e:
            raise CursorStoreError(f"cannot read the state of output {sink_id}: {e}") from e
        return SinkState.from_dict(raw) if raw else None

    async def save(self, session_id: str, sink_id: str, state: SinkState) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    update(OutputRow)
                    .where(OutputRow.session_id == session_id, OutputRow.sink_id == sink_id)
                    .values(state=state.to_dict(), done=state.health == "done")
                )
        except SQLAlchemyError as e:
            raise CursorStoreError(f"cannot save the state of output {sink_id}: {e}") from e

    async def list(self, session_id: str) -> dict[str, SinkState]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(OutputRow.sink_id, OutputRow.state)
                    .where(OutputRow.session_id == session_id)
                    .order_by(OutputRow.sink_id)
                )
            ).all()
        return {str(sink_id): SinkState.from_dict(state) for sink_id, state in rows if state}

    async def delete(self, session_id: str, sink_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(OutputRow)
                .where(OutputRow.session_id == session_id, OutputRow.sink_id == sink_id)
                .values(state=None, done=False)
            )

    async def close(self) -> None:
        return None


def spec_from_storage(data: dict[str, Any]) -> SinkSpec:
    """A stored output spec (``storage_dict``) as a spec again."""
    return OUTPUTS.validate_python([data])[0]


@dataclass
class _Held:
    manager: SinkManager
    title: str


class Outputs:
    """Validates, stores and runs the outputs of sessions (see the module docstring).

    Attributes:
        owner: this process's name in the leases.
    """

    def __init__(
        self,
        db: Database,
        events: EventLog,
        broker: Broker,
        blobs: BlobStore | None,
        *,
        settings: DocsWebSettings,
        guard: UrlGuard,
        owner: str | None = None,
        scan_interval_s: float = SCAN_INTERVAL_S,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.db = db
        self.events = events
        self.broker = broker
        self.blobs = blobs
        self.settings = settings
        self.guard = guard
        self.owner = owner or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.scan_interval_s = scan_interval_s
        self.lease_ttl_s = lease_ttl_s
        self.store = DatabaseCursorStore(db)
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    # --- validating -----------------------------------------------------------------------------

    def parse(self, raw: Any) -> list[SinkSpec]:
        """``outputs`` of a request as specs with ids; pydantic's ValidationError or DuplicateSink."""
        return parse_outputs(raw)

    async def check(self, specs: Sequence[SinkSpec]) -> None:
        """What the models cannot check (credentials, the webhook's host); SinkConfigError."""
        await validate_outputs(specs, settings=self.settings, blobs=self.blobs, guard=self.guard)

    @staticmethod
    def storage(specs: Iterable[SinkSpec]) -> tuple[dict[str, Any], ...]:
        return tuple(storage_dict(s) for s in specs)

    # --- running --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outputs")

    def wake(self) -> None:
        """Look for new outputs now (a session was created with some, or got one)."""
        self._wake.set()

    async def close(self) -> None:
        """Stop every sink run here (their cursors stay stored) and release the leases."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for sid in list(self._held):
            await self._drop(sid)

    async def _loop(self) -> None:
        while not self._closed:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except (BrokerError, SQLAlchemyError, CursorStoreError, OSError) as e:
                log.warning("outputs: scan failed: %s", e)
            except Exception:
                log.exception("outputs: scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.scan_interval_s)
            self._wake.clear()

    async def scan(self) -> None:
        """Take (or keep) the lease of every session with undelivered outputs, and run them."""
        async with self._lock:
            async with self.db.read() as conn:
                rows = (
                    await conn.execute(
                        select(OutputRow.session_id, OutputRow.sink_id, OutputRow.spec, SessionRow.title)
                        .join(SessionRow, SessionRow.id == OutputRow.session_id)
                        .where(OutputRow.done.is_(False))
                        .order_by(OutputRow.position, OutputRow.sink_id)
                    )
                ).all()
            pending: dict[str, list[tuple[str, dict[str, Any], str]]] = {}
            for sid, sink_id, spec, title in rows:
                pending.setdefault(str(sid), []).append((str(sink_id), dict(spec), str(title or "")))
            for sid in list(self._held):
                if sid not in pending:  # every sink delivered its end
                    await self._drop(sid)
            for sid, sinks in pending.items():
                if not await self._lease(sid):
                    if sid in self._held:
                        log.warning("session %s: another process took its outputs over", sid)
                        await self._drop(sid, release=False)
                    continue
                held = self._held.get(sid)
                if held is None:
                    held = self._held[sid] = _Held(self._manager(sid, sinks[0][2]), sinks[0][2])
                for sink_id, data, _title in sinks:
                    if sink_id in held.manager.runners:
                        continue
                    try:
                        await held.manager.add(spec_from_storage(data))
                    except (ValidationError, DuplicateSink, ValueError) as e:
                        log.error("session %s: stored output %s cannot run: %s", sid, sink_id, e)

    def _manager(self, session_id: str, title: str) -> SinkManager:
        return SinkManager(
            session_id,
            self._source(session_id),
            self.store,
            settings=self.settings,
            blobs=self.blobs,
            guard=self.guard,
            title=title,
        )

    def _source(self, session_id: str) -> Any:
        """The session's transcript events from its durable log, after a cursor (an event id)."""
        events = self.events

        def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
            async def read() -> AsyncIterator[tuple[str, Event]]:
                async with contextlib.aclosing(events.subscribe(session_id, int(after or 0))) as sub:
                    async for stored in sub:
                        if stored is None or stored.type not in TRANSCRIPT_TYPES:
                            continue
                        try:
                            event = event_from_dict(json.loads(stored.data))
                        except (CoreSerializationError, ValueError) as e:
                            log.error("session %s: event %d cannot be read: %s", session_id, stored.id, e)
                            continue
                        yield str(stored.id), event

            return read()

        return source

    async def _lease(self, session_id: str) -> bool:
        """Take or renew the session's lease; False when another process holds it."""
        key = outputs_lease_key(session_id)
        cur = await self.broker.kv_get(key)
        if cur is not None and cur.value.get("owner") not in ("", self.owner):
            return False
        value = {"owner": self.owner, "at": time.time()}
        return await self.broker.kv_cas(key, cur.version if cur else 0, value, ttl_s=self.lease_ttl_s) is not None

    async def _drop(self, session_id: str, *, release: bool = True) -> None:
        held = self._held.pop(session_id, None)
        if held is not None:
            await held.manager.close()
        if not release:
            return
        key = outputs_lease_key(session_id)
        with contextlib.suppress(BrokerError):
            cur = await self.broker.kv_get(key)
            if cur is not None and cur.value.get("owner") == self.owner:
                await self.broker.kv_cas(key, cur.version, {"owner": ""}, ttl_s=1.0)

    # --- adding and showing ------------------------------------------------------------------------

    async def add(self, session_id: str, spec: SinkSpec) -> dict[str, Any]:
        """Store one more output of a session and start it; DuplicateSink when it has that id."""
        async with self.db.read() as conn:
            existing = [
                str(r[0])
                for r in await conn.execute(select(OutputRow.sink_id).where(OutputRow.session_id == session_id))
            ]
        (spec,) = with_ids([spec], existing=existing)
        assert spec.id is not None
        data = storage_dict(spec)
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    insert(OutputRow).values(
                        session_id=session_id,
                        sink_id=spec.id,
                        position=len(existing),
                        type=spec.type,
                        spec=data,
                        created_at=time.time(),
                    )
                )
        except IntegrityError as e:
            raise DuplicateSink(f"the session already has an output with id {spec.id!r}") from e
        await self.scan()
        views = await self.describe([session_id])
        return next(v for v in views.get(session_id, []) if v["id"] == spec.id)

    async def describe(self, session_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each session's outputs: the spec without secrets and the sink's status (live when it
        runs here, else as last stored)."""
        if not session_ids:
            return {}
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(OutputRow.session_id, OutputRow.sink_id, OutputRow.spec, OutputRow.state)
                    .where(OutputRow.session_id.in_(set(session_ids)))
                    .order_by(OutputRow.position, OutputRow.sink_id)
                )
            ).all()
        out: dict[str, list[dict[str, Any]]] = {}
        for sid, sink_id, data, state in rows:
            sid, sink_id = str(sid), str(sink_id)
            try:
                spec = spec_from_storage(dict(data))
            except ValidationError:
                continue
            held = self._held.get(sid)
            runner = held.manager.runners.get(sink_id) if held is not None else None
            if runner is not None and runner.state.health != "stopped":
                status = runner.status
            else:
                stored = SinkState.from_dict(state) if state else SinkState()
                status = SinkStatus(sink_id, spec.type, target_of(spec, sid, stored.data), stored)
            out.setdefault(sid, []).append({**status.to_dict(), "spec": public_dict(spec)})
        return out

    @property
    def running(self) -> list[str]:
        """Sessions whose sinks run in this process."""
        return list(self._held)


__all__ = ["DatabaseCursorStore", "Outputs", "spec_from_storage"]
