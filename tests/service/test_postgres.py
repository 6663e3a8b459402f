"""The whole service on PostgreSQL (asyncpg, full text in the database): a session through the API,
its search hit, and a restart that keeps everything, in a database made for the test and dropped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.servers import server_missing

from .conftest import Running, _pg_available, pg_database

pytestmark = pytest.mark.timeout(180)
Factory = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    why = _pg_available()
    if why:
        server_missing(why)
    async with pg_database() as url:
        yield url


async def test_session_search_and_restart_on_postgresql(make_service: Factory, pg_url: str, speech_url: str) -> None:
    async with make_service(database_url=pg_url) as r:
        assert r.service.db.dialect == "postgresql" and r.service.search.name == "postgresql-fts"
        status, s = await r.post("/v1/sessions", {"url": speech_url, "title": "On PostgreSQL"})
        assert status == 201
        status, events = await r.sse(s["id"])
        assert events[-1][1]["type"] == "end" and [i for i, _ in events] == list(range(1, len(events) + 1))
        status, found = await r.get('/v1/search?q="new library"')
        assert status == 200 and [h["session"] for h in found["hits"]] == [s["id"]]
        assert "<mark>" in found["hits"][0]["snippet"] and found["hits"][0]["title"] == "On PostgreSQL"
        status, srt = await r.get(f"/v1/sessions/{s['id']}/transcript?format=srt")
        assert status == 200 and "-->" in srt
        status, health = await r.get("/healthz")
        assert health["database"] == "postgresql"

    async with make_service(database_url=pg_url) as r:  # a new process on the same database
        status, again = await r.get(f"/v1/sessions/{s['id']}")
        assert status == 200 and again["status"] == "completed"
        status, replay = await r.sse(s["id"])
        assert replay == events
        status, found = await r.get("/v1/search?q=weekends")
        assert [h["session"] for h in found["hits"]] == [s["id"]]
