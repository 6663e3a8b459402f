"""A session's live SSE stream with its interim text merged in (``?partials=1``).

The durable events (``events.EventLog.subscribe``) carry ids and resume exactly; ``partial``
events come from the session's partials stream (``katopotato.drafts``) between them, without an id
(a resumed stream never replays one). A partial whose seq is already committed — its ``segment`` or
``gap`` event is out, on this stream or before it — is dropped: a segment replaces its partials for
good. The stream ends with the durable one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ..events import StoredEvent

LiveItem = StoredEvent | dict[str, Any] | None  # a durable event, a partial, or a keep-alive (None)
QUEUE_SIZE = 64
_END = object()


def _committed_seq(ev: StoredEvent) -> int | None:
    if ev.type not in ("segment", "gap"):
        return None
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return int(json.loads(ev.data)["seq"])
    return None


async def with_partials(
    events: AsyncIterator[StoredEvent | None],
    partials: AsyncIterator[dict[str, Any]],
    committed_seq: int | None,
) -> AsyncGenerator[LiveItem]:
    """``events`` with ``partials`` merged in, as they come; ``committed_seq``: the session's last
    committed seq when the stream starts (None: none yet)."""
    queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
    committed = -1 if committed_seq is None else committed_seq
    failure: list[BaseException] = []

    async def pump_events() -> None:
        try:
            async for ev in events:
                await queue.put(ev)
        except Exception as e:  # handed to the reader, which raises it
            failure.append(e)
        finally:
            await queue.put(_END)

    async def pump_partials() -> None:
        async for p in partials:
            if queue.full():
                continue  # a slow client: partials are the first thing to give up
            await queue.put(p)

    tasks = [asyncio.create_task(pump_events()), asyncio.create_task(pump_partials())]
    try:
        while True:
            item = await queue.get()
            if item is _END:
                if failure:
                    raise failure[0]
                return
            if isinstance(item, dict):
                seq = item.get("seq")
                if isinstance(seq, int) and seq > committed:
                    yield item
                continue
            if item is not None:
                seq = _committed_seq(item)
                if seq is not None:
                    committed = max(committed, seq)
            yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for gen in (events, partials):
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


__all__ = ["LiveItem", "with_partials"]
