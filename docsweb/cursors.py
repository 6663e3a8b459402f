"""Durable cursor stores: where each sink's cursor and state live between restarts.

Three implementations of one protocol, keyed by ``(session_id, sink_id)``:

* ``SqliteCursorStore``: a SQLite file (the embedded deployment, and a sink run as a process of its
  own); every write is committed before ``save`` returns.
* ``KeyedStateCursorStore``: the katopotato broker's keyed state (``kv_get``/``kv_cas``; memory or
  Redis), so any process of a deployment reads the same cursors; the broker is passed in (anything
  with those two methods), docsweb does not import katopotato.
* ``MemoryCursorStore``: this process only (tests, one-shot runs).

Only the runner of a sink writes its state, so ``save`` is a plain replace; the runner never moves a
cursor backwards.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from couchpotato.keyed import KeyedState as CoreKeyedState
from couchpotato.keyed import VersionedValue, Write, update_keyed

from .base import SinkState
from .errors import CursorStoreError

KV_ATTEMPTS = 20


@runtime_checkable
class CursorStore(Protocol):
    """Each sink's state, durable across restarts."""

    async def load(self, session_id: str, sink_id: str) -> SinkState | None: ...

    async def save(self, session_id: str, sink_id: str, state: SinkState) -> None:
        """Durably replace the sink's state (written when this returns)."""
        ...

    async def list(self, session_id: str) -> dict[str, SinkState]:
        """Every sink of a session with its state, by sink id."""
        ...

    async def delete(self, session_id: str, sink_id: str) -> None: ...

    async def close(self) -> None: ...


class _Closing:
    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class MemoryCursorStore(_Closing):
    """Cursors in this process's memory."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], SinkState] = {}

    async def load(self, session_id: str, sink_id: str) -> SinkState | None:
        return self._states.get((session_id, sink_id))

    async def save(self, session_id: str, sink_id: str, state: SinkState) -> None:
        self._states[(session_id, sink_id)] = state

    async def list(self, session_id: str) -> dict[str, SinkState]:
        return {k[1]: v for k, v in sorted(self._states.items()) if k[0] == session_id}

    async def delete(self, session_id: str, sink_id: str) -> None:
        self._states.pop((session_id, sink_id), None)


class SqliteCursorStore(_Closing):
    """Cursors in a SQLite file; its blocking calls run in a thread, one at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS sink_state (session_id TEXT NOT NULL, sink_id TEXT NOT NULL,"
                    " state TEXT NOT NULL, PRIMARY KEY (session_id, sink_id))"
                )
            except (sqlite3.Error, OSError) as e:
                raise CursorStoreError(f"cannot open the cursor store {self.path}: {e}") from e
            self._conn = conn
        return self._conn

    def _run(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db().execute(sql, args).fetchall())
            except sqlite3.Error as e:
                raise CursorStoreError(f"cursor store {self.path}: {e}") from e

    async def _q(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._run, sql, args)

    async def load(self, session_id: str, sink_id: str) -> SinkState | None:
        rows = await self._q("SELECT state FROM sink_state WHERE session_id=? AND sink_id=?", session_id, sink_id)
        return SinkState.from_dict(json.loads(rows[0][0])) if rows else None

    async def save(self, session_id: str, sink_id: str, state: SinkState) -> None:
        await self._q(
            "INSERT INTO sink_state (session_id, sink_id, state) VALUES (?, ?, ?)"
            " ON CONFLICT (session_id, sink_id) DO UPDATE SET state=excluded.state",
            session_id,
            sink_id,
            json.dumps(state.to_dict()),
        )

    async def list(self, session_id: str) -> dict[str, SinkState]:
        rows = await self._q("SELECT sink_id, state FROM sink_state WHERE session_id=? ORDER BY sink_id", session_id)
        return {str(r[0]): SinkState.from_dict(json.loads(r[1])) for r in rows}

    async def delete(self, session_id: str, sink_id: str) -> None:
        await self._q("DELETE FROM sink_state WHERE session_id=? AND sink_id=?", session_id, sink_id)

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def close(self) -> None:
        await asyncio.to_thread(self._close)


class KeyedState(CoreKeyedState, Protocol):
    """The part of katopotato's ``Broker`` this store uses: keyed state with compare-and-set, and
    deleting a key."""

    async def kv_delete(self, key: str) -> None: ...


class KeyedStateCursorStore(_Closing):
    """Cursors in the broker's keyed state: ``<prefix><session>:<sink>``, and an index of a session's
    sinks under ``<prefix><session>``. The broker stays the caller's to close."""

    def __init__(self, kv: KeyedState, prefix: str = "docsweb:") -> None:
        self.kv = kv
        self.prefix = prefix
        self._indexed: set[tuple[str, str]] = set()

    def _key(self, session_id: str, sink_id: str) -> str:
        return f"{self.prefix}{session_id}:{sink_id}"

    async def _update(self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> None:
        def write(cur: VersionedValue | None) -> Write | None:
            value = change(dict(cur.value) if cur else None)
            return None if value is None else Write(value)

        def conflict() -> Exception:
            return CursorStoreError(f"cursor store key {key} kept changing under {KV_ATTEMPTS} attempts")

        await update_keyed(self.kv, key, write, attempts=KV_ATTEMPTS, conflict=conflict)

    async def load(self, session_id: str, sink_id: str) -> SinkState | None:
        cur = await self.kv.kv_get(self._key(session_id, sink_id))
        return SinkState.from_dict(cur.value) if cur else None

    async def save(self, session_id: str, sink_id: str, state: SinkState) -> None:
        await self._update(self._key(session_id, sink_id), lambda _old: state.to_dict())
        if (session_id, sink_id) in self._indexed:
            return

        def index(old: dict[str, Any] | None) -> dict[str, Any] | None:
            sinks = list((old or {}).get("sinks", []))
            return None if sink_id in sinks else {"sinks": [*sinks, sink_id]}

        await self._update(self.prefix + session_id, index)
        self._indexed.add((session_id, sink_id))

    async def list(self, session_id: str) -> dict[str, SinkState]:
        cur = await self.kv.kv_get(self.prefix + session_id)
        out: dict[str, SinkState] = {}
        for sink_id in sorted(cur.value.get("sinks", []) if cur else []):
            state = await self.load(session_id, str(sink_id))
            if state is not None:
                out[str(sink_id)] = state
        return out

    async def delete(self, session_id: str, sink_id: str) -> None:
        def index(old: dict[str, Any] | None) -> dict[str, Any] | None:
            sinks = [s for s in (old or {}).get("sinks", []) if s != sink_id]
            return {"sinks": sinks}

        await self._update(self.prefix + session_id, index)
        await self.kv.kv_delete(self._key(session_id, sink_id))
        self._indexed.discard((session_id, sink_id))


__all__ = ["CursorStore", "KeyedState", "KeyedStateCursorStore", "MemoryCursorStore", "SqliteCursorStore"]
