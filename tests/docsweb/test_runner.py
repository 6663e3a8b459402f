"""The runner and the cursor stores: ordered delivery, batching, backoff, failing status, restarts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from couchpotato.records import EndEvent, Event, TranscriptEvent
from docsweb import (
    BatchPolicy,
    CursorStore,
    DuplicateSink,
    Item,
    KeyedStateCursorStore,
    MemoryCursorStore,
    SinkContext,
    SinkManager,
    SinkRetry,
    SinkRunner,
    SinkState,
    SqliteCursorStore,
    parse_outputs,
    stored_statuses,
)
from docsweb.testing import wait_for
from katopotato.broker import MemoryBroker
from katopotato.broker.redis import RedisBroker
from tests.scheduler.conftest import redis_url  # noqa: F401 - the fixture

STORES = ["memory", "sqlite", "broker-memory", "broker-redis"]


def events(n: int) -> list[tuple[str, Event]]:
    out: list[tuple[str, Event]] = [
        (str(i + 1), TranscriptEvent("s", i, i * 2.0, i * 2 + 1.5, f"words {i}", (), time.time())) for i in range(n)
    ]
    return [*out, (str(n + 1), EndEvent("end_of_source", "", n))]


def listed(
    items: Sequence[tuple[str, Event]], *, pause_s: float = 0.0
) -> Callable[[str | None], AsyncIterator[tuple[str, Event]]]:
    async def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
        for event_id, ev in items:
            if after is None or int(event_id) > int(after):
                if pause_s:
                    await asyncio.sleep(pause_s)
                yield event_id, ev

    return source


class RecordingSink:
    """A sink that remembers what it was given; ``fail`` decides, per attempt, what goes wrong."""

    type = "recording"
    target = "memory"

    def __init__(
        self, policy: BatchPolicy | None = None, fail: Callable[[int], Exception | None] | None = None
    ) -> None:
        self.id = "rec"
        self.policy = policy or BatchPolicy(max_events=5, retry_for_s=60, max_backoff_s=0.05)
        self.fail = fail or (lambda _n: None)
        self.delivered: list[str] = []
        self.batches: list[list[str]] = []
        self.attempts: list[float] = []
        self.opened_with: str | None = None
        self.resume: str | None = None
        self.block_on: int | None = None

    async def open(self, ctx: SinkContext) -> str | None:
        self.opened_with = ctx.stored_cursor
        return self.resume if self.resume is not None else ctx.stored_cursor

    async def ready(self) -> None:
        return None

    async def deliver(self, batch: Sequence[Item]) -> None:
        self.attempts.append(time.monotonic())
        if self.block_on is not None and len(self.batches) == self.block_on:
            await asyncio.Event().wait()  # hangs until the task is cancelled: the process dies here
        problem = self.fail(len(self.attempts))
        if problem is not None:
            raise problem
        self.batches.append([i.event_id for i in batch])
        self.delivered += [i.event_id for i in batch]

    async def close(self) -> None:
        return None


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CursorStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryCursorStore()
    elif kind == "sqlite":
        async with SqliteCursorStore(tmp_path / "cursors.db") as s:
            yield s
    elif kind == "broker-memory":
        async with MemoryBroker() as b:
            yield KeyedStateCursorStore(b)
    else:
        async with RedisBroker(request.getfixturevalue("redis_url")) as b:
            yield KeyedStateCursorStore(b)


async def test_cursor_store_round_trip(store: CursorStore) -> None:
    assert await store.load("s1", "a") is None
    state = SinkState(cursor="17-0", data={"document_id": "d1"}, health="failing", last_error="boom", delivered=3)
    await store.save("s1", "a", state)
    await store.save("s1", "b", SinkState(cursor="2"))
    await store.save("s2", "a", SinkState(cursor="9"))
    assert await store.load("s1", "a") == state
    assert sorted(await store.list("s1")) == ["a", "b"]
    await store.save("s1", "a", SinkState(cursor="18-0"))
    loaded = await store.load("s1", "a")
    assert loaded is not None and loaded.cursor == "18-0"
    await store.delete("s1", "b")
    assert list(await store.list("s1")) == ["a"] and await store.load("s1", "b") is None


async def test_sqlite_cursors_survive_a_new_process(tmp_path: Path) -> None:
    async with SqliteCursorStore(tmp_path / "c.db") as a:
        await a.save("s", "k", SinkState(cursor="5"))
    async with SqliteCursorStore(tmp_path / "c.db") as b:
        state = await b.load("s", "k")
    assert state is not None and state.cursor == "5"


async def test_a_restart_resumes_with_nothing_skipped_or_doubled(store: CursorStore) -> None:
    items = events(12)
    first = RecordingSink(BatchPolicy(max_events=2, max_backoff_s=0.05))
    first.block_on = 3  # the process dies in the middle of its fourth delivery
    runner = SinkRunner("s", first, listed(items), store)
    task = asyncio.create_task(runner.run())
    await wait_for(lambda: len(first.attempts) == 4)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    saved = await store.load("s", "rec")
    assert saved is not None and saved.cursor == first.delivered[-1] == "6"

    second = RecordingSink(BatchPolicy(max_events=2, max_backoff_s=0.05))
    final = await SinkRunner("s", second, listed(items), store).run()
    assert second.opened_with == "6"
    assert first.delivered + second.delivered == [i for i, _e in items]
    assert final.health == "done" and final.cursor == items[-1][0] and final.delivered == len(items)
    again = RecordingSink()
    await SinkRunner("s", again, listed(items), store).run()
    assert again.delivered == [], "a sink that delivered the end is done"


async def test_the_destination_can_move_the_cursor_forward() -> None:
    sink = RecordingSink()
    sink.resume = "4"  # e.g. a Google Doc's marker says it holds events up to 4
    await SinkRunner("s", sink, listed(events(6)), MemoryCursorStore()).run()
    assert sink.delivered == ["5", "6", "7"]


async def test_failures_back_off_are_reported_failing_and_recover() -> None:
    started = time.monotonic()

    def fail(_attempt: int) -> Exception | None:
        return RuntimeError("receiver on fire") if time.monotonic() - started < 1.0 else None

    sink = RecordingSink(BatchPolicy(max_events=3, retry_for_s=0.3, max_backoff_s=0.1), fail)
    seen: list[str] = []
    runner = SinkRunner(
        "s", sink, listed(events(5)), MemoryCursorStore(), on_change=lambda s: seen.append(s.state.health)
    )
    final = await runner.run()
    assert "retrying" in seen and "failing" in seen and seen[-1] == "done"
    assert seen.index("retrying") < seen.index("failing")
    assert final.failing_since is None and final.last_error == "receiver on fire"
    assert sink.delivered == [str(i) for i in range(1, 7)]
    gaps = [b - a for a, b in itertools.pairwise(sink.attempts) if a - started < 1.0]
    assert gaps and all(g >= 0.02 for g in gaps), "retries are spaced by the backoff"
    assert len(sink.attempts) < 60, "the backoff is not a busy loop"


async def test_retry_after_is_honoured() -> None:
    sink = RecordingSink(fail=lambda n: SinkRetry("slow down", defer_s=0.6) if n == 1 else None)
    await SinkRunner("s", sink, listed(events(2)), MemoryCursorStore()).run()
    assert sink.attempts[1] - sink.attempts[0] >= 0.6


async def test_batches_respect_the_interval_and_size() -> None:
    sink = RecordingSink(BatchPolicy(min_interval_s=0.3, max_events=3))
    await SinkRunner("s", sink, listed(events(14), pause_s=0.04), MemoryCursorStore()).run()
    assert [i for b in sink.batches for i in b] == [str(i) for i in range(1, 16)]
    assert all(len(b) <= 3 for b in sink.batches) and len(sink.batches) < 15
    assert sink.batches[0] == ["1"], "the first event after a quiet spell goes at once"
    # a batch goes when the interval since the last one has passed, or sooner when it is full
    spaced = [
        b - a for a, b, full in zip(sink.attempts, sink.attempts[1:], sink.batches[1:], strict=False) if len(full) < 3
    ]
    assert spaced and all(g >= 0.29 for g in spaced), spaced


async def test_a_failing_source_is_reopened_after_the_last_event_read() -> None:
    items = events(6)
    opened: list[str | None] = []

    def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
        opened.append(after)
        inner = listed(items)(after)

        async def flaky() -> AsyncIterator[tuple[str, Event]]:
            async for n, (event_id, ev) in _enumerate(inner):
                if len(opened) == 1 and n == 3:
                    raise ConnectionError("broker went away")
                yield event_id, ev

        return flaky()

    sink = RecordingSink()
    await SinkRunner("s", sink, source, MemoryCursorStore()).run()
    assert opened == [None, "3"]
    assert sink.delivered == [i for i, _e in items]


async def _enumerate(it: AsyncIterator[tuple[str, Event]]) -> AsyncIterator[tuple[int, tuple[str, Event]]]:
    n = 0
    async for x in it:
        yield n, x
        n += 1


async def test_manager_ids_status_and_duplicates(tmp_path: Path) -> None:
    from katopotato.blobs import FileBlobStore

    specs = parse_outputs([{"type": "file", "format": "srt"}, {"type": "file", "format": "vtt"}])
    assert specs[0].id != specs[1].id and specs == parse_outputs(
        [{"type": "file", "format": "srt"}, {"type": "file", "format": "vtt"}]
    )
    with pytest.raises(DuplicateSink):
        parse_outputs([{"type": "file", "format": "srt"}, {"type": "file", "format": "srt"}])
    store = MemoryCursorStore()
    async with SinkManager("m", listed(events(3)), store, blobs=FileBlobStore(tmp_path)) as m:
        await m.start(specs)
        with pytest.raises(DuplicateSink):
            await m.add(specs[0])
        statuses = await m.wait(10)
        assert [s.to_dict()["status"] for s in statuses] == ["done", "done"]
        from_store = await stored_statuses(store, "m", specs)  # what an API process that runs no sink sees
        assert [s.to_dict() for s in from_store] == [s.to_dict() for s in statuses]
        assert set(statuses[0].to_dict()) == {
            "id", "type", "target", "status", "cursor", "delivered", "last_error", "failing_since", "updated_at"
        }  # fmt: skip
        added = await m.add(parse_outputs([{"type": "file", "format": "jsonl", "id": "late"}])[0])
        assert added.sink_id == "late"
        await m.wait(10)
        assert m.runners["late"].state.delivered == 4, "a sink added later gets the transcript from the start"
        assert await m.remove("late") and not await m.remove("late")
