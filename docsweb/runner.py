"""The runner: one asyncio task per sink, from its cursor to the session's ``end`` event.

``SinkRunner.run`` loads the sink's state from the cursor store, lets the sink ``open`` (which
may move the cursor forward from what the destination proves it holds), then reads the session's
events from the source after that cursor and delivers them in batches (``BatchPolicy``). After each
delivery it saves the new cursor; a failed delivery is retried with exponential backoff (or after
the ``Retry-After`` the destination gave), with the events that arrived meanwhile added to the
batch. A sink that keeps failing for ``retry_for_s`` is reported ``failing`` and keeps retrying at
its longest backoff, so it catches up by itself; each sink has its own task, reader and cursor,
so one failing destination never holds another back.

The source is a factory: ``source(after)`` returns an async iterator of ``(event_id, event)``
with ids in order, starting after ``after`` (None: from the first event), ending after the ``end``
event. If it fails (the broker is down), it is opened again after the last id read.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from couchpotato.records import EndEvent, Event

from .base import Item, OrderKey, Sink, SinkContext, SinkState, SinkStatus, event_order, later
from .constants import BACKOFF_BASE_S, BACKOFF_JITTER, QUEUE_MAX_EVENTS, SOURCE_RETRY_S
from .cursors import CursorStore
from .errors import CursorStoreError, SinkRetry

log = logging.getLogger(__name__)

EventSource = Callable[[str | None], AsyncIterator[tuple[str, Event]]]
MAX_RETRY_AFTER_S = 3_600.0


class _Eof:
    """The source ended without an ``end`` event."""


_EOF = _Eof()


def backoff_s(attempt: int, cap_s: float, base_s: float = BACKOFF_BASE_S) -> float:
    """Exponential backoff with ±BACKOFF_JITTER jitter: base, 2·base, 4·base… up to ``cap_s``."""
    delay = min(cap_s, base_s * float(2 ** min(attempt, 30)))
    return delay * random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


class SinkRunner:
    """Delivers one session's events to one sink (see the module docstring)."""

    def __init__(
        self,
        session_id: str,
        sink: Sink,
        source: EventSource,
        store: CursorStore,
        *,
        title: str = "",
        order: OrderKey = event_order,
        on_change: Callable[[SinkStatus], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.sink = sink
        self.source = source
        self.store = store
        self.title = title
        self.order = order
        self.on_change = on_change
        self.state = SinkState()
        self._failures = 0

    @property
    def status(self) -> SinkStatus:
        return SinkStatus(self.sink.id, self.sink.type, self.sink.target, self.state)

    async def run(self) -> SinkState:
        """Deliver until the ``end`` event is delivered (or the source ends); returns the final state."""
        stored = await self._retry_store(lambda: self.store.load(self.session_id, self.sink.id))
        self.state = stored or SinkState()
        if self.state.health == "done":
            return self.state
        cursor = await self._open()
        if cursor != self.state.cursor:
            log.info("session %s sink %s: the destination holds events up to %s", self.session_id, self.sink.id, cursor)
        await self._save(self.state.evolve(cursor=cursor, health="ok"))
        queue: asyncio.Queue[Item | _Eof] = asyncio.Queue(maxsize=QUEUE_MAX_EVENTS)
        reader = asyncio.create_task(self._read(cursor, queue), name=f"docsweb-read-{self.sink.id}")
        try:
            await self._deliver(queue)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return self.state

    # --- opening ------------------------------------------------------------------------------

    async def _open(self) -> str | None:
        async def save_data(data: Mapping[str, Any]) -> None:
            await self._save(self.state.evolve(data=dict(data)))

        while True:
            ctx = SinkContext(self.session_id, self.title, self.state, save_data, self.order)
            try:
                cursor = await self.sink.open(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self._failed(e)
                continue
            return later(cursor, None, self.order)

    # --- reading ------------------------------------------------------------------------------

    async def _read(self, after: str | None, queue: asyncio.Queue[Item | _Eof]) -> None:
        last = after
        while True:
            try:
                async for event_id, event in self.source(last):
                    if last is not None and self.order(event_id) <= self.order(last):
                        continue  # a source that repeats itself after a reopen
                    await queue.put(Item(event_id, event))
                    last = event_id
                    if isinstance(event, EndEvent):
                        return
                await queue.put(_EOF)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "session %s sink %s: reading the transcript failed (%s); again in %.0f s",
                    self.session_id,
                    self.sink.id,
                    e,
                    SOURCE_RETRY_S,
                )
                await asyncio.sleep(SOURCE_RETRY_S)

    # --- delivering ---------------------------------------------------------------------------

    async def _deliver(self, queue: asyncio.Queue[Item | _Eof]) -> None:
        policy = self.sink.policy
        pending: list[Item] = []
        eof = False
        last_attempt = float("-inf")

        def take() -> None:
            """Whatever is waiting in the queue joins the batch."""
            nonlocal eof
            while len(pending) < policy.max_events and not eof:
                try:
                    got = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if isinstance(got, _Eof):
                    eof = True
                else:
                    pending.append(got)

        while True:
            policy = self.sink.policy
            if not pending and not eof:
                got = await queue.get()
                if isinstance(got, _Eof):
                    eof = True
                else:
                    pending.append(got)
            # events arriving until the interval since the last delivery has passed join this one
            while not eof and len(pending) < policy.max_events:
                wait = last_attempt + policy.min_interval_s - time.monotonic()
                if wait <= 0:
                    break
                try:
                    got = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    break
                if isinstance(got, _Eof):
                    eof = True
                else:
                    pending.append(got)
            if pending:
                await self.sink.ready()
            take()
            if not pending:
                return  # the source ended
            batch = pending[: policy.max_events]
            last_attempt = time.monotonic()
            try:
                await self.sink.deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                await self._failed(e)
                continue
            del pending[: len(batch)]
            self._failures = 0
            done = any(isinstance(i.event, EndEvent) for i in batch)
            await self._save(
                self.state.evolve(
                    cursor=batch[-1].event_id,
                    delivered=self.state.delivered + len(batch),
                    health="done" if done else "ok",
                    failing_since=None,
                )
            )
            if done:
                return

    async def _failed(self, e: Exception) -> None:
        """Record a failure, then wait before the next try."""
        now = time.time()
        since = self.state.failing_since or now
        policy = self.sink.policy
        health = "failing" if now - since >= policy.retry_for_s else "retrying"
        message = str(e) or type(e).__name__
        if not isinstance(e, SinkRetry):
            log.warning("session %s sink %s: %s", self.session_id, self.sink.id, message, exc_info=e)
        elif health != self.state.health or message != self.state.last_error:
            log.info("session %s sink %s (%s): %s", self.session_id, self.sink.id, health, message)
        await self._save(self.state.evolve(health=health, last_error=message, failing_since=since))
        defer = e.defer_s if isinstance(e, SinkRetry) else None
        delay = min(defer, MAX_RETRY_AFTER_S) if defer is not None else backoff_s(self._failures, policy.max_backoff_s)
        self._failures += 1
        await asyncio.sleep(delay)

    async def _save(self, state: SinkState) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(self.status)
        await self._retry_store(lambda: self.store.save(self.session_id, self.sink.id, state))

    async def _retry_store(self, op: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                return await op()
            except (CursorStoreError, OSError) as e:
                log.warning("session %s sink %s: cursor store: %s", self.session_id, self.sink.id, e)
                await asyncio.sleep(backoff_s(attempt, self.sink.policy.max_backoff_s))
                attempt += 1


__all__ = ["EventSource", "SinkRunner", "backoff_s"]
