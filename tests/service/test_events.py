"""The durable event log: ordered ids, live fan-out, resume after any id with no loss and no
repeats (while events are being written, for slow readers, across processes, after the end)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import pytest

from katopotato.db import Database
from katopotato.events import RECENT_EVENTS, EventLog
from katopotato.search import open_search
from katopotato.sessions import SessionSpec, SessionStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


async def new_session(db: Database, log: EventLog) -> str:
    search = open_search("sqlite://" if db.is_sqlite else "postgresql://", db)
    spec = SessionSpec(url="https://example.org/a.mp3")
    await SessionStore(db, log, search).create(spec, source_kind="http", source_reason="test")
    return spec.id  # its log starts with the "starting" status event, id 1


def line(n: int, kind: str = "segment") -> tuple[str, str]:
    return kind, json.dumps({"type": kind, "n": n})


async def collect(log: EventLog, sid: str, after: int = 0) -> list[int]:
    ids = []
    async for ev in log.subscribe(sid, after):
        assert ev is not None
        ids.append(ev.id)
    return ids


async def test_ids_count_from_one_per_session_and_data_is_kept_verbatim(db: Database) -> None:
    log = EventLog(db)
    a, b = await new_session(db, log), await new_session(db, log)
    await log.append(a, [line(1), line(2)])
    await log.append(b, [line(1)])
    await log.append(a, [line(3)])
    assert [e.id for e in await log.all(a)] == [1, 2, 3, 4]
    assert [e.id for e in await log.all(b)] == [1, 2]
    assert (await log.all(a))[3].data == json.dumps({"type": "segment", "n": 3})
    assert await log.last_id(a) == 4


async def test_live_subscribers_get_everything_in_order_once_while_it_is_written(db: Database) -> None:
    log = EventLog(db, poll_interval_s=5)
    sid = await new_session(db, log)
    total = 200
    rng = random.Random(4)

    sixty = asyncio.Event()

    async def produce() -> None:
        for n in range(total):
            await log.append(sid, [line(n)])
            if n == 60:
                sixty.set()
            if rng.random() < 0.3:
                await asyncio.sleep(rng.random() / 200)
        await log.append(sid, [line(total, "end")])

    early = asyncio.create_task(collect(log, sid))
    producer = asyncio.create_task(produce())
    await sixty.wait()
    resume_from = await log.last_id(sid)
    late = asyncio.create_task(collect(log, sid, after=resume_from))
    await producer
    first, second = await asyncio.wait_for(asyncio.gather(early, late), 30)
    last = total + 2  # the starting event, the segments, the end
    assert first == list(range(1, last + 1))
    assert second == list(range(resume_from + 1, last + 1))


async def test_a_slow_reader_falls_back_to_the_database_and_misses_nothing(db: Database) -> None:
    log = EventLog(db, poll_interval_s=5)
    sid = await new_session(db, log)
    got: list[int] = []
    started = asyncio.Event()

    async def slow() -> None:
        async for ev in log.subscribe(sid):
            assert ev is not None
            got.append(ev.id)
            started.set()
            if len(got) == 2:
                await asyncio.sleep(0.5)  # meanwhile more than the live buffer is written

    reader = asyncio.create_task(slow())
    n = RECENT_EVENTS + 300
    await log.append(sid, [line(0)])
    await started.wait()
    await log.append(sid, [line(i) for i in range(1, n)])
    await log.append(sid, [line(n, "end")])
    await asyncio.wait_for(reader, 30)
    assert got == list(range(1, n + 3))


async def test_events_written_by_another_process_arrive_by_polling(db: Database) -> None:
    reader_log = EventLog(db, poll_interval_s=0.1)
    writer_log = EventLog(db)  # another process: its publish never reaches reader_log
    sid = await new_session(db, writer_log)
    task = asyncio.create_task(collect(reader_log, sid))
    await asyncio.sleep(0.2)
    await writer_log.append(sid, [line(1), line(2, "end")])
    assert await asyncio.wait_for(task, 10) == [1, 2, 3]


async def test_resume_after_the_end(db: Database) -> None:
    log = EventLog(db)
    sid = await new_session(db, log)
    await log.append(sid, [line(1), line(2), line(3, "end")])
    assert await asyncio.wait_for(collect(log, sid, after=2), 5) == [3, 4]
    assert await asyncio.wait_for(collect(log, sid, after=4), 5) == []


async def test_idle_subscriptions_yield_keepalives_and_close_ends_them(db: Database) -> None:
    log = EventLog(db, poll_interval_s=0.05)
    sid = await new_session(db, log)
    items = []
    async for ev in log.subscribe(sid, idle_s=0.2):
        items.append(ev)
        if items.count(None) == 2:
            break
    assert items[0] is not None and items[0].id == 1 and items[1:] == [None, None]
    task = asyncio.create_task(collect(log, sid, after=1))
    await asyncio.sleep(0.1)
    log.close()
    assert await asyncio.wait_for(task, 5) == []


async def test_concurrent_writers_of_one_session_never_collide(db: Database) -> None:
    log = EventLog(db)
    search = open_search("sqlite://" if db.is_sqlite else "postgresql://", db)
    store = SessionStore(db, log, search)
    spec = SessionSpec(url="https://example.org/a.mp3")
    await store.create(spec, source_kind="http", source_reason="test")
    other = SessionStore(db, log, search)  # a second writer that shares no lock with the first
    writes = [
        (store if i % 2 else other).set_status(spec.id, "running", health="ok" if i % 3 else "silent")
        for i in range(40)
    ]
    stored = await asyncio.gather(*writes)
    assert sorted(e.id for e in stored) == list(range(2, 42))
    assert [e.id for e in await log.all(spec.id)] == list(range(1, 42))
