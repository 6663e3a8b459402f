"""What every sink is: the protocol the runner drives, and the records it keeps per sink.

A sink receives a session's transcript events in order, in batches (``Item``: the event and its
stream id). ``open`` tells the runner where to resume: the sink is handed the cursor the runner
stored (the id of the last event it saw delivered) and may move it forward from what its
destination says it holds (a Google Doc carries a marker per batch, a file its own state), which is
what keeps a crash between a write and the cursor save from doubling anything. ``deliver`` either
delivers the whole batch or raises (``SinkRetry`` for a failure worth retrying); the runner then
saves the new cursor.

Event ids are opaque, ordered strings: the broker's stream ids (``<ms>-<n>``) or the service's
per-session event numbers (``1``, ``2``…). ``event_order`` compares both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from couchpotato.records import Event

SinkHealth = Literal["pending", "ok", "retrying", "failing", "done", "stopped"]
OrderKey = Callable[[str], tuple[int, ...]]


def event_order(event_id: str) -> tuple[int, ...]:
    """Sort key of an event id: ``"1700000000000-3"`` → ``(1700000000000, 3)``, ``"42"`` → ``(42,)``."""
    try:
        return tuple(int(part) for part in event_id.split("-"))
    except ValueError:
        raise ValueError(f"event id {event_id!r} is not a stream id (<ms>-<n>) or a number") from None


def later(a: str | None, b: str | None, order: OrderKey = event_order) -> str | None:
    """The later of two cursors (None: nothing delivered yet)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if order(a) >= order(b) else b


@dataclass(frozen=True, slots=True)
class Item:
    """One event of the stream and its id."""

    event_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How the runner groups events for a sink and retries it.

    Attributes:
        min_interval_s: at least this long between two deliveries (events arriving meanwhile join
            the next batch); the first event after a quiet spell goes at once.
        max_events: at most this many events per delivery.
        retry_for_s: failures this long in a row mark the sink failing (it keeps retrying).
        max_backoff_s: the cap of the exponential backoff between retries.
    """

    min_interval_s: float = 0.0
    max_events: int = 1
    retry_for_s: float = 300.0
    max_backoff_s: float = 60.0


@dataclass(frozen=True, slots=True)
class SinkState:
    """What the cursor store keeps per (session, sink); JSON round-trip via to/from_dict.

    Attributes:
        cursor: id of the last event delivered (None: nothing yet).
        data: the sink's own durable facts (the id of the document it created…).
        health: pending (not started yet), ok, retrying (failing for less than ``retry_for_s``),
            failing, done (delivered the ``end`` event), stopped (removed, or the service stopped).
        last_error: the latest failure, kept after recovery for the API to show.
        failing_since: wall time the current run of failures began, None while healthy.
        delivered: events delivered so far.
        updated_at: wall time of the last change.
    """

    cursor: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    health: SinkHealth = "pending"
    last_error: str = ""
    failing_since: float | None = None
    delivered: int = 0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "cursor": self.cursor,
            "data": dict(self.data),
            "health": self.health,
            "last_error": self.last_error,
            "failing_since": self.failing_since,
            "delivered": self.delivered,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SinkState:
        cursor = d.get("cursor")
        since = d.get("failing_since")
        return cls(
            cursor=None if cursor is None else str(cursor),
            data=dict(d.get("data") or {}),
            health=d.get("health", "pending"),
            last_error=str(d.get("last_error", "")),
            failing_since=None if since is None else float(since),
            delivered=int(d.get("delivered", 0)),
            updated_at=float(d.get("updated_at", 0.0)),
        )

    def evolve(self, **changes: Any) -> SinkState:
        return replace(self, updated_at=time.time(), **changes)


@dataclass(frozen=True, slots=True)
class SinkStatus:
    """A sink as the API shows it: its id, type, where it delivers, and its state."""

    sink_id: str
    type: str
    target: str
    state: SinkState

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "id": self.sink_id,
            "type": self.type,
            "target": self.target,
            "status": s.health,
            "cursor": s.cursor,
            "delivered": s.delivered,
            "last_error": s.last_error or None,
            "failing_since": s.failing_since,
            "updated_at": s.updated_at,
        }


@dataclass(frozen=True)
class SinkContext:
    """What a sink is told when it opens.

    Attributes:
        session_id: the session whose transcript it delivers.
        title: the session's title ("" when it has none).
        stored: the state the cursor store holds for it (empty the first time).
        save_data: persists the sink's own durable facts (``SinkState.data``) before it goes on.
        order: sort key of event ids.
    """

    session_id: str
    title: str
    stored: SinkState
    save_data: Callable[[Mapping[str, Any]], Awaitable[None]]
    order: OrderKey = event_order

    @property
    def stored_cursor(self) -> str | None:
        return self.stored.cursor

    @property
    def stored_data(self) -> Mapping[str, Any]:
        return self.stored.data


@runtime_checkable
class Sink(Protocol):
    """A destination of one session's transcript."""

    id: str
    type: str

    @property
    def policy(self) -> BatchPolicy:
        """How to batch and retry; read before every batch, so a sink may adapt it."""
        ...

    @property
    def target(self) -> str:
        """Where it delivers, for people (a document URL, a webhook URL, a blob key); no secrets."""
        ...

    async def open(self, ctx: SinkContext) -> str | None:
        """Prepare the destination and return the cursor to resume after: the stored one, or a
        later one the destination proves it already holds. Raises SinkRetry to be called again."""
        ...

    async def ready(self) -> None:
        """Wait until the sink may deliver (a rate budget shared with other sinks); the runner
        composes the batch after this, so events arriving meanwhile join it."""
        ...

    async def deliver(self, batch: Sequence[Item]) -> None:
        """Deliver every event of ``batch`` (in order), or raise; SinkRetry asks for a retry."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "BatchPolicy",
    "Item",
    "OrderKey",
    "Sink",
    "SinkContext",
    "SinkHealth",
    "SinkState",
    "SinkStatus",
    "event_order",
    "later",
]
