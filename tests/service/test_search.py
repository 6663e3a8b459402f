"""Search backends: one contract, run on SQLite FTS5 and on PostgreSQL full text (and on
Elasticsearch when ELASTICSEARCH_URL is set). Segments are recorded the way the service records
them: through ``SessionStore.record``, in the transaction that commits them."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from couchpotato.records import TranscriptEvent
from katopotato.db import Database
from katopotato.events import EventLog
from katopotato.search import InvalidCursor, InvalidQuery, SearchBackend, SearchQuery, open_search, parse
from katopotato.search.elasticsearch import ElasticsearchSearch
from katopotato.search.fts5 import match_expression
from katopotato.search.postgres import tsquery
from katopotato.sessions import SessionSpec, SessionStore
from tests.es_standin import StandIn
from tests.servers import server_missing

from .conftest import _pg_available, pg_database

pytestmark = pytest.mark.timeout(60)
ES_URL = os.environ.get("ELASTICSEARCH_URL", "")

TEXTS = [
    "The city council met on Tuesday evening to discuss the new library.",
    "Several residents asked for longer opening hours on weekends.",
    "Libraries across the region report record visits this summer.",
    "The budget for the new library will be published next month.",
    "Council members disagreed about <script>alert('x')</script> & parking fees.",
]


class Fixture:
    def __init__(self, store: SessionStore, search: SearchBackend) -> None:
        self.store = store
        self.search = search

    async def session(self, title: str, texts: list[str], emitted_at: float | None = None) -> str:
        spec = SessionSpec(url=f"https://example.org/{title}.mp3", title=title)
        await self.store.create(spec, source_kind="http", source_reason="test")
        now = emitted_at or time.time()
        for seq, text in enumerate(texts):
            ev = TranscriptEvent(spec.id, seq, seq * 5.0, seq * 5.0 + 4.5, text, (), now + seq * 0.001)
            await self.store.record(spec.id, ev)
        return spec.id

    async def find(self, q: str, **kw: object) -> list[tuple[str, int]]:
        if isinstance(self.search, ElasticsearchSearch):
            await self.search.sync()  # the indexer runs about a second behind the commits
        page = await self.search.search(SearchQuery(parse(q), **kw))  # type: ignore[arg-type]
        return [(h.session_id, h.seq) for h in page.hits]


@contextlib.asynccontextmanager
async def standin() -> AsyncIterator[tuple[str, StandIn]]:
    """The Elasticsearch stand-in (tests/es_standin.py) on a free port; yields its URL."""
    es = StandIn()
    runner = web.AppRunner(es.app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", es
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def backend(kind: str, tmp_path: Path) -> AsyncIterator[tuple[Database, str]]:
    """A database and the search URL of ``kind``."""
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'couchpotato.db'}"
    if kind == "sqlite":
        yield Database(sqlite), "sqlite://"
    elif kind == "postgresql":
        why = _pg_available()
        if why:
            server_missing(why)
        async with pg_database() as url:
            yield Database(url), "postgresql://"
    elif kind == "elasticsearch-standin":
        async with standin() as (url, _):
            yield Database(sqlite), f"{url}/kp-test"
    else:
        if not ES_URL:
            pytest.skip("ELASTICSEARCH_URL is not set: the Elasticsearch backend ran against the stand-in only")
        yield Database(sqlite), f"{ES_URL.rstrip('/')}/kp-test-{secrets.token_hex(4)}"


@pytest.fixture(params=["sqlite", "postgresql", "elasticsearch-standin", "elasticsearch"])
async def fx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fixture]:
    async with backend(request.param, tmp_path) as (db, url):
        await db.start()
        search = open_search(url, db)
        await search.start()
        try:
            yield Fixture(SessionStore(db, EventLog(db), search), search)
        finally:
            if isinstance(search, ElasticsearchSearch) and request.param == "elasticsearch":
                await drop_es_indices(search)
            await search.close()
            await db.close()


async def drop_es_indices(search: ElasticsearchSearch) -> None:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(search.base, basic_auth=search._auth) as es:
        await es.options(ignore_status=404).indices.delete(index=f"{search.alias}-*")
        await es.options(ignore_status=404).indices.delete_index_template(name=search.template)


async def test_terms_are_stemmed_and_all_must_match(fx: Fixture) -> None:
    sid = await fx.session("a", TEXTS)
    assert set(await fx.find("library")) == {(sid, 0), (sid, 2), (sid, 3)}  # libraries stems to library
    assert await fx.find("library budget") == [(sid, 3)]
    assert await fx.find("library parking") == []


async def test_phrases_keep_word_order(fx: Fixture) -> None:
    sid = await fx.session("a", TEXTS)
    assert set(await fx.find('"new library"')) == {(sid, 0), (sid, 3)}
    assert await fx.find('"library new"') == []
    assert await fx.find('"opening hours" weekends') == [(sid, 1)]


async def test_prefix_terms(fx: Fixture) -> None:
    sid = await fx.session("a", TEXTS)
    assert set(await fx.find("resid*")) == {(sid, 1)}
    assert set(await fx.find("counc*")) == {(sid, 0), (sid, 4)}
    assert set(await fx.find('"opening hou"*')) == {(sid, 1)}


async def test_snippets_are_highlighted_and_html_safe(fx: Fixture) -> None:
    await fx.session("a", TEXTS)
    await fx.find("parking")
    page = await fx.search.search(SearchQuery(parse("parking")))
    (hit,) = page.hits
    assert "<mark>parking</mark>" in hit.snippet
    # no markup but <mark>: FTS5 keeps the text and escapes it; PostgreSQL's ts_headline drops tags
    assert "<" not in hit.snippet.replace("<mark>", "").replace("</mark>", "")
    if fx.search.name == "sqlite-fts5":
        assert "&lt;script&gt;" in hit.snippet
    assert hit.text == TEXTS[4]
    page = await fx.search.search(SearchQuery(parse('"new library"')))
    assert all("<mark>" in h.snippet for h in page.hits)


async def test_newest_first_with_cursor_paging_that_neither_skips_nor_repeats(fx: Fixture) -> None:
    first = await fx.session("one", TEXTS)
    second = await fx.session("two", TEXTS)
    expected = [(second, 3), (second, 2), (second, 0), (first, 3), (first, 2), (first, 0)]
    seen: list[tuple[str, int]] = []
    cursor = None
    pages = 0
    while True:
        await fx.find("library")
        page = await fx.search.search(SearchQuery(parse("library"), limit=4, cursor=cursor))
        seen += [(h.session_id, h.seq) for h in page.hits]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    assert pages == 2


async def test_session_and_since_filters(fx: Fixture) -> None:
    old = await fx.session("old", TEXTS, emitted_at=time.time() - 3600)
    new = await fx.session("new", TEXTS)
    assert {s for s, _ in await fx.find("library", session=old)} == {old}
    assert {s for s, _ in await fx.find("library", since=time.time() - 60)} == {new}
    assert await fx.find("library", session="nosuchsession") == []
    assert await fx.find("library", since=time.time() + 60) == []


async def test_since_is_exact_when_commits_race(fx: Fixture) -> None:
    now = time.time()
    late_id = await fx.session("late", ["the library opens late"], emitted_at=now - 10)  # committed first
    early_id = await fx.session("early", ["the library opens early"], emitted_at=now - 20)  # a slower commit
    assert set(await fx.find("library", since=now - 15)) == {(late_id, 0)}
    assert set(await fx.find("library", since=now - 25)) == {(late_id, 0), (early_id, 0)}


async def test_operators_and_quotes_cannot_be_injected(fx: Fixture) -> None:
    sid = await fx.session("a", [*TEXTS, "You can take it OR leave it NOT today, he said."])
    if fx.search.name == "sqlite-fts5":  # PostgreSQL's English configuration drops "or" as a stop word
        assert await fx.find("OR") == [(sid, 5)]
    assert await fx.find('NOT "today') == [(sid, 5)]
    assert await fx.find("leave & !today | it:*") == [(sid, 5)]
    assert await fx.find("council) OR (budget") == []  # parentheses are not syntax
    assert await fx.find("it's") == []


async def test_a_foreign_cursor_is_refused(fx: Fixture) -> None:
    await fx.session("a", TEXTS)
    for bad in ("garbage!", "eyJ4IjoxfQ"):  # not base64 JSON; JSON without our key
        with pytest.raises(InvalidCursor):
            await fx.search.search(SearchQuery(parse("library"), cursor=bad))


def test_query_language() -> None:
    q = parse('Library "New  Library" libr* "opening hou"* don\'t')
    assert [(p.words, p.prefix) for p in q.parts] == [
        (("library",), False),
        (("new", "library"), False),
        (("libr",), True),
        (("opening", "hou"), True),
        (("don", "t"), False),
    ]
    assert match_expression(q) == 'text : ("library" "new library" "libr"* "opening hou"* "don t")'
    assert tsquery(parse('"new library" li*')) == "('new' <-> 'library') & ('li':*)"
    for bad in ("", "   ", '"" ***', "a*", "x" * 501, " ".join(f"w{i}" for i in range(17))):
        with pytest.raises(InvalidQuery):
            parse(bad)
