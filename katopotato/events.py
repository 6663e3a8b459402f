"""The durable per-session event log, and its live fan-out to subscribers.

Every event a session produces (the core's transcript events, plus the service's ``status``
events) is one row: ``(session_id, id)`` with ``id`` counting 1, 2, 3… per session, and ``data``
the exact JSON line a client receives (a ``data:`` of the SSE stream, a line of the jsonl export).
The database is the truth; memory only makes delivery fast:

* ``insert`` writes events inside the caller's transaction (so an event, its indexed segment and
  the session's counters commit together); ``publish`` hands them, once committed, to the live
  channel of that session.
* ``subscribe(session_id, after)`` yields every event with ``id > after`` in order, each once: the
  backlog from the database, then live events from the channel's recent buffer, falling back to
  the database whenever the buffer does not reach back far enough (a slow client) and every
  ``poll_interval_s`` when nothing is published (events written by another process). It ends after
  the ``end`` event, so a client that resumes after a session ended gets what it missed and stops
  (at once, when it had already seen the end).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import Database, EventRow

RECENT_EVENTS = 1_024  # per live channel
READ_BATCH = 500
DEFAULT_POLL_INTERVAL_S = 1.0
END_TYPE = "end"


@dataclass(frozen=True)
class StoredEvent:
    """One logged event: ``data`` is the JSON line, ``type`` its ``type`` field."""

    session_id: str
    id: int
    type: str
    data: str
    created_at: float


@dataclass
class _Channel:
    recent: collections.deque[StoredEvent] = field(default_factory=lambda: collections.deque(maxlen=RECENT_EVENTS))
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: int = 0

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def after(self, last: int) -> list[StoredEvent] | None:
        """Events with id > last when the buffer reaches back to last + 1, else None."""
        if not self.recent or self.recent[0].id > last + 1:
            return None
        return [e for e in self.recent if e.id > last]


class EventLog:
    """Per-session logs in the database, with live delivery to subscribers in this process."""

    def __init__(self, db: Database, *, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        self.db = db
        self.poll_interval_s = poll_interval_s
        self._channels: dict[str, _Channel] = {}
        self._closed = False

    async def insert(
        self, conn: AsyncConnection, session_id: str, events: Sequence[tuple[str, str]]
    ) -> list[StoredEvent]:
        """Append ``(type, data)`` pairs inside the caller's transaction; ids follow the last one."""
        last = (
            await conn.execute(select(func.max(EventRow.id)).where(EventRow.session_id == session_id))
        ).scalar() or 0
        now = time.time()
        stored = [StoredEvent(session_id, last + i + 1, kind, data, now) for i, (kind, data) in enumerate(events)]
        if stored:
            await conn.execute(
                insert(EventRow),
                [
                    {"session_id": e.session_id, "id": e.id, "type": e.type, "data": e.data, "created_at": e.created_at}
                    for e in stored
                ],
            )
        return stored

    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Wake this process's subscribers; call once the events are committed."""
        by_session: dict[str, list[StoredEvent]] = {}
        for e in events:
            by_session.setdefault(e.session_id, []).append(e)
        for session_id, evs in by_session.items():
            channel = self._channels.get(session_id)
            if channel is None:
                continue
            channel.recent.extend(evs)
            channel.notify()

    async def append(self, session_id: str, events: Sequence[tuple[str, str]]) -> list[StoredEvent]:
        """Insert in a transaction of its own, then publish."""
        async with self.db.write() as conn:
            stored = await self.insert(conn, session_id, events)
        self.publish(stored)
        return stored

    async def read(self, session_id: str, after: int = 0, limit: int = READ_BATCH) -> list[StoredEvent]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(EventRow.__table__)
                    .where(EventRow.session_id == session_id, EventRow.id > after)
                    .order_by(EventRow.id)
                    .limit(limit)
                )
            ).all()
            return [StoredEvent(r.session_id, r.id, r.type, r.data, r.created_at) for r in rows]

    async def all(self, session_id: str) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        while True:
            batch = await self.read(session_id, out[-1].id if out else 0)
            out.extend(batch)
            if len(batch) < READ_BATCH:
                return out

    async def last_id(self, session_id: str) -> int:
        async with self.db.read() as conn:
            value = (
                await conn.execute(select(func.max(EventRow.id)).where(EventRow.session_id == session_id))
            ).scalar()
        return int(value or 0)

    async def subscribe(
        self, session_id: str, after: int = 0, *, idle_s: float | None = None
    ) -> AsyncGenerator[StoredEvent | None, None]:
        """Events with ``id > after``, in order, once each, until the ``end`` event.

        With ``idle_s``, yields None after that long without an event (for keep-alives).
        """
        channel = self._channels.setdefault(session_id, _Channel())
        channel.subscribers += 1
        last = after
        from_db = True
        checked_end = False
        idle_since = time.monotonic()
        try:
            while not self._closed:
                wake = channel.changed
                batch = None if from_db else channel.after(last)
                if batch is None:
                    batch = await self.read(session_id, last)
                    if not batch and not checked_end:
                        checked_end = True  # only a resume can start past the end; later, the end is read
                        if await self._ended_by(session_id, last):
                            return  # resumed after the end: nothing will ever follow
                from_db = len(batch) >= READ_BATCH
                for ev in batch:
                    yield ev
                    last = ev.id
                    if ev.type == END_TYPE:
                        return
                if batch:
                    idle_since = time.monotonic()
                    continue
                timeout = self.poll_interval_s
                if idle_s is not None:
                    timeout = max(0.0, min(timeout, idle_s - (time.monotonic() - idle_since)))
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except TimeoutError:
                    from_db = True
                    if idle_s is not None and time.monotonic() - idle_since >= idle_s:
                        idle_since = time.monotonic()
                        yield None
        finally:
            channel.subscribers -= 1
            if channel.subscribers <= 0 and self._channels.get(session_id) is channel:
                del self._channels[session_id]

    async def _ended_by(self, session_id: str, last: int) -> bool:
        async with self.db.read() as conn:
            end_id = (
                await conn.execute(
                    select(func.max(EventRow.id)).where(EventRow.session_id == session_id, EventRow.type == END_TYPE)
                )
            ).scalar()
        return end_id is not None and end_id <= last

    @property
    def subscriber_count(self) -> int:
        return sum(c.subscribers for c in self._channels.values())

    def close(self) -> None:
        """End every subscription (at shutdown)."""
        self._closed = True
        for channel in self._channels.values():
            channel.notify()


__all__ = ["EventLog", "StoredEvent"]
