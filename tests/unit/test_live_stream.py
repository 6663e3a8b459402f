"""The SSE stream's merge of interim text into the durable events (katopotato.api.live)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from katopotato.api.live import with_partials
from katopotato.events import StoredEvent


def stored(i: int, kind: str, **fields: Any) -> StoredEvent:
    return StoredEvent("s", i, kind, json.dumps({"type": kind, **fields}), 0.0)


async def forever(items: list[dict[str, Any]], after: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
    await after.wait()
    for item in items:
        yield item
    await asyncio.Event().wait()  # a partials stream never ends by itself


async def test_partials_of_committed_seqs_are_dropped_and_the_stream_ends_with_the_durable_one() -> None:
    go = asyncio.Event()
    durable = [stored(1, "status", status="running"), stored(2, "segment", seq=0), stored(3, "segment", seq=1)]
    partials = [{"type": "partial", "seq": 0, "revision": 9}, {"type": "partial", "seq": 2, "revision": 1}]

    async def events() -> AsyncIterator[StoredEvent | None]:
        for ev in durable:
            yield ev
        go.set()  # the partials come once seq 1 is committed
        await asyncio.sleep(0.2)
        yield stored(4, "end", reason="end_of_source")

    got = [item async for item in with_partials(events(), forever(partials, go), committed_seq=None)]
    assert [g.id if isinstance(g, StoredEvent) else g["seq"] for g in got if g is not None] == [1, 2, 3, 2, 4]


async def test_the_session_committed_before_the_stream_started_drops_older_partials() -> None:
    go = asyncio.Event()
    go.set()

    async def events() -> AsyncIterator[StoredEvent | None]:
        await asyncio.sleep(0.2)
        yield stored(9, "end", reason="end_of_source")

    partials = [{"type": "partial", "seq": 4}, {"type": "partial", "seq": 5}]
    got = [item async for item in with_partials(events(), forever(partials, go), committed_seq=4)]
    assert [g["seq"] for g in got if isinstance(g, dict)] == [5]


async def test_a_failing_durable_stream_raises_to_the_reader() -> None:
    async def events() -> AsyncIterator[StoredEvent | None]:
        yield stored(1, "status", status="running")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        async for _ in with_partials(events(), forever([], asyncio.Event()), committed_seq=None):
            pass
