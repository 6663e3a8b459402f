"""The session and token stores: one contract, run on SQLite (a file in tmp_path) and on
PostgreSQL (a database made for the test on the local server and dropped after it; in CI a missing
server fails the test instead of skipping it). Two ``SessionStore``s on one database stand for two
service processes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.exc import IntegrityError

from couchpotato.records import EndEvent, GapEvent, SessionEvent, TranscriptEvent
from katopotato.auth import ADMIN, TokenStore
from katopotato.db import Database
from katopotato.events import EventLog
from katopotato.search import SearchQuery, open_search, parse
from katopotato.sessions import SessionSpec, SessionStore

pytestmark = pytest.mark.timeout(60)


def _store(db: Database) -> SessionStore:
    search = open_search("sqlite://" if db.is_sqlite else "postgresql://", db)
    return SessionStore(db, EventLog(db), search)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.close()


async def new_session(store: SessionStore, title: str = "", **kw: object) -> str:
    spec = SessionSpec(url=f"https://example.org/{title or 'talk'}.mp3", title=title, **kw)  # type: ignore[arg-type]
    record = await store.create(spec, source_kind="http", source_reason="test")
    return record.id


def transcript(sid: str, seq: int, text: str) -> TranscriptEvent:
    return TranscriptEvent(sid, seq, seq * 4.0, seq * 4.0 + 4.0, text, (), time.time())


async def test_a_session_is_created_with_its_options_and_outputs(db: Database) -> None:
    store = _store(db)
    spec = SessionSpec(
        url="https://example.org/a.mp3",
        vocabulary=("Buttigieg", "Comprehend"),
        outputs=({"id": "o1", "type": "file", "format": "srt"},),
    )
    record = await store.create(spec, source_kind="http", source_reason="test", created_by="tok1")
    assert (record.id, record.status, record.health, record.keep_audio) == (spec.id, "starting", "unknown", True)
    assert list(record.vocabulary) == ["Buttigieg", "Comprehend"] and record.title == "a.mp3"
    assert record.created_by == "tok1" and record.last_event_id == 1
    with pytest.raises(IntegrityError):  # one session per id
        await store.create(spec, source_kind="http", source_reason="test")
    events = await store.events.all(spec.id)
    assert [(e.id, e.type) for e in events] == [(1, "status")]


async def test_recording_counts_segments_and_gaps_and_indexes_text(db: Database) -> None:
    store = _store(db)
    sid = await new_session(store)
    await store.record(sid, SessionEvent(time.time() - 5, sid, "https://example.org/talk.mp3", "http"))
    await store.record(sid, transcript(sid, 0, "the new library opens on Tuesday"), duration_s=4.0, cursor="1-0")
    await store.record(sid, GapEvent(sid, 1, 4.0, 8.0, "asr_failed"), duration_s=8.0, cursor="2-0")
    await store.record(sid, transcript(sid, 2, "   "), duration_s=12.0, cursor="3-0")  # silence: nothing to index
    await store.record(sid, transcript(sid, 3, "weekend hours for the library"), duration_s=16.0, cursor="4-0")
    r = await store.require(sid)
    assert (r.committed_seq, r.segments, r.gaps, r.duration_s, r.stream_cursor) == (3, 3, 1, 16.0, "4-0")
    assert r.media_epoch is not None and r.started_at is not None and r.last_event_id == 6
    page = await store.search.search(SearchQuery(parse("library")))
    assert [h.seq for h in page.hits] == [3, 0]
    with pytest.raises(IntegrityError):  # a seq is committed once: the transaction rolls back whole
        await store.record(sid, transcript(sid, 3, "again"))
    assert (await store.require(sid)).last_event_id == 6
    assert [e.id for e in await store.events.all(sid)] == [1, 2, 3, 4, 5, 6]


async def test_finish_is_final_and_interrupt_leaves_ended_sessions_alone(db: Database) -> None:
    store = _store(db)
    done, running, starting = [await new_session(store, t) for t in ("done", "running", "starting")]
    await store.record(done, transcript(done, 0, "hello"))
    await store.set_status(running, "running", health="ok")
    first = await store.finish(done, "completed", EndEvent("end_of_source", "", 1), duration_s=4.0)
    assert [e.type for e in first] == ["status", "end"]
    assert await store.finish(done, "failed", EndEvent("error", "late", 1)) == []
    assert (await store.require(done)).status == "completed"
    assert await store.interrupt(done, "restart") is False
    assert sorted(await store.active_ids()) == sorted([running, starting])
    assert sorted(await store.interrupt_active("the service restarted")) == sorted([running, starting])
    r = await store.require(running)
    assert (r.status, r.health, r.error) == ("interrupted", "ended", "the service restarted")
    end = json.loads((await store.events.all(running))[-1].data)
    assert end["type"] == "end" and end["reason"] == "interrupted"
    assert await store.count_by_status() == {"completed": 1, "interrupted": 2}


async def test_listing_pages_newest_first_and_filters_by_status(db: Database) -> None:
    store = _store(db)
    ids = [await new_session(store, f"s{i}") for i in range(5)]
    await store.finish(ids[1], "stopped", EndEvent("stopped", "", 0))
    seen: list[str] = []
    after = None
    while True:
        page, after = await store.list(limit=2, after=after)
        seen += [r.id for r in page]
        if after is None:
            break
    assert seen == ids[::-1]
    stopped, more = await store.list(status="stopped")
    assert [r.id for r in stopped] == [ids[1]] and more is None
    assert await store.titles([ids[0], ids[2], "nosuch"]) == {ids[0]: "s0", ids[2]: "s2"}
    assert await store.titles([]) == {}


async def test_two_writers_of_one_session_never_collide(db: Database) -> None:
    """Event ids stay gapless and unique when two stores write one session at once: on PostgreSQL two
    engines (two service processes, ordered by the session row's ``FOR UPDATE``); SQLite is the
    one-process embedded store (its writes are ordered by the process's lock), so one engine there."""
    other_db = db if db.is_sqlite else Database(db.url)
    try:
        a, b = _store(db), _store(other_db)
        sid = await new_session(a)

        async def write(store: SessionStore, n: int) -> None:
            for i in range(n):
                await store.set_status(sid, "running", health="ok" if i % 2 else "degraded")

        await asyncio.gather(write(a, 15), write(b, 15))
        ids = [e.id for e in await a.events.all(sid)]
        assert ids == list(range(1, 32))
        assert (await b.require(sid)).last_event_id == 31
    finally:
        if other_db is not db:
            await other_db.close()


async def test_tokens_are_stored_hashed_and_revocable(db: Database) -> None:
    tokens = TokenStore(db)
    secret = await tokens.ensure_admin()
    assert secret is not None and await tokens.ensure_admin() is None  # one admin is enough
    principal = await tokens.authenticate(secret)
    assert principal is not None and ADMIN in principal.scopes
    reader, info = await tokens.create(["sessions:read"], name="reader")
    assert [t.name for t in await tokens.list()] == ["generated on first start", "reader"]
    assert await tokens.revoke(info.id) is True and await tokens.revoke(info.id) is False
    assert await tokens.authenticate(reader) is None
    assert await tokens.authenticate(reader.replace("_", "-")) is None
