"""The Elasticsearch backend's own duties, through the real ``elasticsearch`` client against the
stand-in (tests/es_standin.py): the index template, the indexer that follows the database from its
cursor (nothing lost while the cluster is down), the reindex job, and a clear error when the
cluster cannot be reached. The search contract itself is in test_search.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from couchpotato.records import TranscriptEvent
from katopotato.db import Database
from katopotato.errors import ConfigError, SearchUnavailable
from katopotato.events import EventLog
from katopotato.search import SearchQuery, parse
from katopotato.search.elasticsearch import ElasticsearchSearch
from katopotato.sessions import SessionSpec, SessionStore

from .conftest import free_port
from .test_search import standin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'couchpotato.db'}")
    await database.start()
    yield database
    await database.close()


async def record(store: SessionStore, texts: list[str]) -> str:
    spec = SessionSpec(url="https://example.org/debate.mp3")
    await store.create(spec, source_kind="http", source_reason="test")
    for seq, text in enumerate(texts):
        await store.record(spec.id, TranscriptEvent(spec.id, seq, seq * 4.0, seq * 4.0 + 4, text, (), time.time()))
    return spec.id


async def seqs(es: ElasticsearchSearch, q: str) -> list[int]:
    return [h.seq for h in (await es.search(SearchQuery(parse(q)))).hits]


async def test_the_index_takes_its_analysis_from_the_template(db: Database) -> None:
    async with standin() as (url, cluster):
        es = ElasticsearchSearch(f"{url}/kp", db)
        await es.start()
        try:
            assert ("PUT", "/_index_template/kp-template") in cluster.requests
            index = cluster.indices["kp-1"]  # made by the backend without mappings: the template's
            assert index.aliases == {"kp"}
            assert index.fields["text"]["analyzer"] == "segment_english"
            assert index.fields["text.shingles"]["analyzer"] == "segment_shingles"
            assert index.fields["entities.people"]["type"] == "keyword"
            store = SessionStore(db, EventLog(db), es)
            await record(store, ["Mayor Pete's libraries were opening late."])
            await es.sync()
            assert await seqs(es, "library open") == [0]  # possessive, stop words, Porter stems
            assert await seqs(es, '"libraries were opening"') == [0]  # "were" is not a stop word
            shingles = set(index.postings["text.shingles"])
            assert {"mayor pete", "librari were open"} <= shingles
        finally:
            await es.close()


async def test_the_indexer_follows_the_database_and_loses_nothing_while_the_cluster_is_down(db: Database) -> None:
    async with standin() as (url, cluster):
        es = ElasticsearchSearch(f"{url}/kp", db)
        await es.start()
        store = SessionStore(db, EventLog(db), es)
        try:
            sid = await record(store, ["the first library", "the second library"])
            await es.sync()
            assert await seqs(es, "library") == [1, 0]
            cluster.down = True
            spec = SessionSpec(url="https://example.org/later.mp3")
            await store.create(spec, source_kind="http", source_reason="test")
            event = TranscriptEvent(spec.id, 0, 0.0, 4.0, "a library while the cluster was down", (), time.time())
            await store.record(spec.id, event)  # the commit does not wait for the cluster
            with pytest.raises(SearchUnavailable, match="503"):
                await es.sync()
            assert (await store.require(spec.id)).segments == 1
        finally:
            await es.close()
        cluster.down = False
        again = ElasticsearchSearch(f"{url}/kp", db)  # a restarted service: the cursor is in the cluster
        await again.start()
        try:
            await again.sync()
            page = await again.search(SearchQuery(parse("library")))
            assert [(h.session_id, h.seq) for h in page.hits] == [(spec.id, 0), (sid, 1), (sid, 0)]
            state = cluster.indices["kp-state"].docs["kp-1"]
            async with db.read() as conn:
                from sqlalchemy import text

                newest = (await conn.execute(text("SELECT max(id) FROM segments"))).scalar_one()
            assert state == {"cursor": newest}
        finally:
            await again.close()


async def test_reindex_builds_the_next_generation_and_moves_the_alias(db: Database) -> None:
    async with standin() as (url, cluster):
        es = ElasticsearchSearch(f"{url}/kp", db)
        await es.start()
        store = SessionStore(db, EventLog(db), es)
        try:
            await record(store, ["budget talks", "more budget talks", "parking"])
            await es.sync()
            cluster.indices["kp-1"].docs.clear()  # an index that lost its documents
            cluster.indices["kp-1"].refresh()
            assert await seqs(es, "budget") == []
            assert await es.reindex() == "kp-2"
            assert sorted(cluster.indices) == ["kp-2", "kp-state"] and cluster.indices["kp-2"].aliases == {"kp"}
            await es.sync()
            assert await seqs(es, "budget") == [1, 0]
            await record(store, ["a budget after the reindex"])
            await es.sync()
            assert await seqs(es, "budget") == [0, 1, 0]
        finally:
            await es.close()


async def test_an_unreachable_cluster_is_one_clear_line(db: Database) -> None:
    es = ElasticsearchSearch(f"http://127.0.0.1:{free_port()}/kp", db)
    with pytest.raises(SearchUnavailable, match=r"cannot reach Elasticsearch at http://127\.0\.0\.1") as e:
        await es.start()
    assert "\n" not in str(e.value)
    await es.close()


async def test_the_reindex_command(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``katopotato search reindex``, parsed by the real CLI parser and run on settings from the
    environment (in this process: the CLI's own start-up takes most of a minute on a busy machine)."""
    from katopotato.cli import build_parser

    async with standin() as (url, cluster):
        es = ElasticsearchSearch(f"{url}/kp", db)
        await es.start()
        await record(SessionStore(db, EventLog(db), es), ["the debate on the budget"])
        await es.close()
        monkeypatch.setenv("COUCHPOTATO_DATABASE", db.url)
        monkeypatch.setenv("COUCHPOTATO_SEARCH", f"{url}/kp")
        monkeypatch.setenv("COUCHPOTATO_DATA_DIR", str(tmp_path))
        args = build_parser().parse_args(["search", "reindex"])
        assert await args.handler(args) == 0
        assert "the search index is now kp-2" in capsys.readouterr().err
        assert cluster.indices["kp-2"].aliases == {"kp"} and "kp-1" not in cluster.indices
        assert [d["text"] for d in cluster.indices["kp-2"].docs.values()] == ["the debate on the budget"]
        monkeypatch.setenv("COUCHPOTATO_SEARCH", "sqlite://")
        with pytest.raises(ConfigError, match="only an Elasticsearch index is rebuilt"):
            await args.handler(args)


async def test_a_committed_segment_is_searchable_within_seconds_on_its_own(db: Database) -> None:
    """No ``sync``: the background indexer and the index's refresh interval, as in the service."""
    import asyncio

    async with standin() as (url, _):
        es = ElasticsearchSearch(f"{url}/kp", db)
        await es.start()
        try:
            await record(SessionStore(db, EventLog(db), es), ["the harbour reopens in spring"])
            began = time.monotonic()
            while not await seqs(es, "harbour"):
                assert time.monotonic() - began < 5, "not searchable 5 s after the commit"
                await asyncio.sleep(0.2)
        finally:
            await es.close()
