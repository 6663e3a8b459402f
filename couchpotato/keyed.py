"""Keyed state changed by compare-and-set: the one retry loop every writer of shared state uses.

A writer reads the value and its version, computes the new value (and the events to append with
it, atomically) as a pure function of what it read, and writes it only if the version is still
the one it read; on a conflict it reads again after a short random pause. The orchestrator's
broker (``katopotato.broker``) is a ``KeyedState``.

It lives in the core, which never writes shared state itself, because its two users beside the
orchestrator, HotPotato's swap record and DocsWeb's cursors, may not import each other.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class VersionedValue(Protocol):
    """A keyed-state value with its version (the broker's ``Versioned``)."""

    @property
    def value(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...


class KeyedState(Protocol):
    """Keyed state with compare-and-set (and an atomic append to a stream with the write)."""

    async def kv_get(self, key: str) -> VersionedValue | None: ...

    async def kv_cas(
        self,
        key: str,
        version: int,
        value: Mapping[str, Any],
        *,
        append_to: str | None = None,
        entries: Sequence[Mapping[str, Any]] = (),
        ttl_s: float | None = None,
    ) -> list[str] | None: ...


@dataclass(frozen=True)
class Write:
    """What a change writes: the new value, and entries appended to ``append_to`` with it."""

    value: Mapping[str, Any]
    append_to: str | None = None
    entries: Sequence[Mapping[str, Any]] = ()


async def update_keyed(
    kv: KeyedState,
    key: str,
    change: Callable[[VersionedValue | None], Write | None],
    *,
    attempts: int,
    conflict: Callable[[], Exception],
) -> list[str] | None:
    """Apply ``change`` (a pure function of the current value, None when absent; it returns None
    for no change) with compare-and-set, retried on conflict up to ``attempts`` times, then
    ``raise conflict()``. The appended entries' ids, or None when nothing changed."""
    for attempt in range(attempts):
        cur = await kv.kv_get(key)
        write = change(cur)
        if write is None:
            return None
        ids = await kv.kv_cas(
            key, cur.version if cur else 0, write.value, append_to=write.append_to, entries=write.entries
        )
        if ids is not None:
            return ids
        await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise conflict()


__all__ = ["KeyedState", "VersionedValue", "Write", "update_keyed"]
