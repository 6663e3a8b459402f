"""Elasticsearch search, for ``COUCHPOTATO_SEARCH=http(s)://[user:password@]host:9200[/name]``.

Spoken to with the official async client (``elasticsearch[async]``). What lives in the cluster:

- an index template ``<name>-template`` for the indices ``<name>-*``: the ``text`` field with
  the English analysis (possessives, stop words, Porter stemmer) and a ``text.shingles`` sub-field
  of two- and three-word shingles that scores phrases; keyword fields (``session_id``) and the
  entity facets (``entities.people``, ``entities.places``, ``entities.organisations``); times as
  doubles (media seconds, Unix seconds);
- the alias ``<name>`` searches go through, on one concrete index ``<name>-<generation>``;
- ``<name>-state``: the indexer's cursor per concrete index.

The database is the source of truth. Segments are not pushed at commit time: a background
**indexer** bulk-indexes the ``segments`` rows past its cursor (the last row id it indexed), in
batches, woken by every commit (``index``) and once a second; it indexes again the last
``RACE_WINDOW_ROWS`` rows before the cursor each pass, so a commit that took an id and became
visible after a later one is not missed (documents are keyed by session and seq: indexing twice is
harmless). A segment is searchable about a second after it is committed; ``sync`` waits for it.

``reindex`` (the ``core.search_reindex`` job, or ``katopotato`` admins) builds the next generation
from the database and moves the alias in one step: searches never see a half-built index.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import Database, SegmentRow
from ..entities import Entities, EntityExtractor, RulesExtractor
from ..errors import ConfigError, SearchUnavailable
from .base import (
    ELLIPSIS,
    HIGHLIGHT_CLOSE,
    HIGHLIGHT_OPEN,
    InvalidCursor,
    SearchHit,
    SearchPage,
    SearchQuery,
    SegmentDoc,
    decode_cursor,
    encode_cursor,
    render_snippet,
)
from .query import InvalidQuery, ParsedQuery

log = logging.getLogger(__name__)

DEFAULT_INDEX = "couchpotato-segments"
REQUEST_TIMEOUT_S = 10.0
MAX_RETRIES = 3
INDEX_BATCH = 500  # segments per bulk request
INDEX_INTERVAL_S = 1.0  # the indexer looks for new segments at least this often
RACE_WINDOW_ROWS = 200
CLOSE_WAIT_S = 5.0  # at close, the indexer's pass in flight gets this long to finish
ENTITY_FIELDS = ("people", "places", "organisations")
FACET_SIZE = 10

SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "refresh_interval": "1s",
    "analysis": {
        "filter": {
            "english_possessive": {"type": "stemmer", "language": "possessive_english"},
            "english_stop": {"type": "stop", "stopwords": "_english_"},
            "english_stemmer": {"type": "stemmer", "language": "english"},
            "phrase_shingles": {
                "type": "shingle",
                "min_shingle_size": 2,
                "max_shingle_size": 3,
                "output_unigrams": False,
            },
        },
        "analyzer": {
            "segment_english": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["english_possessive", "lowercase", "english_stop", "english_stemmer"],
            },
            "segment_shingles": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["english_possessive", "lowercase", "english_stemmer", "phrase_shingles"],
            },
        },
    },
}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "row_id": {"type": "long"},
        "session_id": {"type": "keyword"},
        "seq": {"type": "integer"},
        "start": {"type": "double"},
        "end": {"type": "double"},
        "emitted_at": {"type": "double"},
        "text": {
            "type": "text",
            "analyzer": "segment_english",
            "fields": {"shingles": {"type": "text", "analyzer": "segment_shingles"}},
        },
        "entities": {"properties": {f: {"type": "keyword"} for f in ENTITY_FIELDS}},
    },
}


def es_query(parsed: ParsedQuery) -> list[dict[str, Any]]:
    """One clause per part, all required. A part made only of stop words ("not", "or") constrains
    nothing (``zero_terms_query: all``), as PostgreSQL's English configuration drops them."""
    clauses: list[dict[str, Any]] = []
    for p in parsed.parts:
        q: dict[str, Any] = {"query": " ".join(p.words), "zero_terms_query": "all"}
        if p.prefix:
            clauses.append({"match_phrase_prefix": {"text": {**q, "max_expansions": 64}}})
        elif len(p.words) == 1:
            clauses.append({"match": {"text": q}})
        else:
            clauses.append({"match_phrase": {"text": q}})
    return clauses


def es_scoring(parsed: ParsedQuery) -> list[dict[str, Any]]:
    """Optional clauses on the shingles: a phrase's words side by side score higher."""
    return [
        {"match": {"text.shingles": {"query": " ".join(p.words)}}}
        for p in parsed.parts
        if len(p.words) > 1 and not p.prefix
    ]


def document(d: SegmentDoc, entities: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "row_id": d.row_id,
        "session_id": d.session_id,
        "seq": d.seq,
        "start": d.start,
        "end": d.end,
        "emitted_at": d.emitted_at,
        "text": d.text,
        "entities": {f: sorted(set((entities or {}).get(f, []))) for f in ENTITY_FIELDS},
    }


class ElasticsearchSearch:
    """Search in Elasticsearch, fed from the database by a background indexer (module docstring).

    Attributes:
        name: ``elasticsearch``.
        alias: what searches go through (``couchpotato-segments`` unless the URL names another).
    """

    name = "elasticsearch"
    transactional = False

    def __init__(
        self,
        url: str,
        db: Database | None = None,
        *,
        run_indexer: bool = True,
        extractor: EntityExtractor | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"COUCHPOTATO_SEARCH={url!r} is not an Elasticsearch http(s) URL")
        self.alias = parts.path.strip("/") or DEFAULT_INDEX
        if "/" in self.alias or self.alias != self.alias.lower():
            raise ConfigError(f"COUCHPOTATO_SEARCH={url!r}: the index name must be one lower-case path part")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urlunsplit((parts.scheme, netloc, "", "", ""))
        self._auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self.db = db
        self.extractor: EntityExtractor = extractor or RulesExtractor()
        self.run_indexer = run_indexer and db is not None
        self.state_index = f"{self.alias}-state"
        self.template = f"{self.alias}-template"
        self._es: Any = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pass_lock = asyncio.Lock()
        self._stopping = False

    # --- life -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; put the index template; make the first generation and its alias if missing;
        start the indexer."""
        from elasticsearch import AsyncElasticsearch

        self._es = AsyncElasticsearch(
            self.base,
            basic_auth=self._auth,
            request_timeout=REQUEST_TIMEOUT_S,
            max_retries=MAX_RETRIES,
            retry_on_timeout=True,
        )
        async with self._calls("set up the index"):
            await self._es.indices.put_index_template(
                name=self.template,
                index_patterns=[f"{self.alias}-*"],
                template={"settings": SETTINGS, "mappings": MAPPINGS},
                priority=100,
            )
            if not await self._es.indices.exists(index=self.state_index):
                await self._es.indices.create(
                    index=self.state_index,
                    settings={"number_of_shards": 1},
                    mappings={"dynamic": "strict", "properties": {"cursor": {"type": "long"}}},
                )
            if not await self._es.indices.exists_alias(name=self.alias):
                first = f"{self.alias}-1"
                if not await self._es.indices.exists(index=first):
                    await self._es.indices.create(index=first)
                await self._es.indices.update_aliases(actions=[{"add": {"index": first, "alias": self.alias}}])
        if self.run_indexer:
            self._task = asyncio.create_task(self._indexer(), name="elasticsearch-indexer")

    async def close(self) -> None:
        """Let the indexer finish the pass it is in (a bulk request is not cut), then disconnect."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_WAIT_S)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._es is not None:
            await self._es.close()
            self._es = None

    @contextlib.asynccontextmanager
    async def _calls(self, what: str) -> Any:
        from elastic_transport import TransportError
        from elasticsearch import ApiError

        if self._es is None:
            raise SearchUnavailable("the Elasticsearch backend is not started")
        try:
            yield
        except ApiError as e:
            raise SearchUnavailable(f"Elasticsearch refused to {what} ({e.meta.status}: {e.message})") from e
        except TransportError as e:
            raise SearchUnavailable(f"cannot reach Elasticsearch at {self.base} to {what}: {e.message}") from e

    # --- indexing -------------------------------------------------------------------------------

    async def index(self, docs: Sequence[SegmentDoc], conn: AsyncConnection | None = None) -> None:
        """Called after each commit: wakes the indexer (the rows are read from the database)."""
        self._wake.set()

    async def _indexer(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), INDEX_INTERVAL_S)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.index_pending()
            except (SearchUnavailable, OSError) as e:
                log.warning("search indexer: %s; trying again", e)
            except Exception:  # a bug: logged, the indexer goes on
                log.exception("search indexer failed")

    async def _current(self) -> str:
        """The concrete index the alias points at."""
        async with self._calls("find the index"):
            found = await self._es.indices.get_alias(name=self.alias)
        names = sorted(found.body)
        if not names:
            raise SearchUnavailable(f"the alias {self.alias} points at no index")
        return str(names[-1])

    async def _cursor(self, index: str) -> int:
        async with self._calls("read the indexer's cursor"):
            found = await self._es.options(ignore_status=404).get(index=self.state_index, id=index)
        return int(found.body.get("_source", {}).get("cursor", 0)) if found.body.get("found") else 0

    async def index_pending(self, index: str | None = None) -> int:
        """Index the segments past ``index``'s cursor (the current generation's by default);
        returns how many documents were sent."""
        if self.db is None:
            raise SearchUnavailable("the Elasticsearch indexer needs the database")
        async with self._pass_lock:
            index = index or await self._current()
            cursor = await self._cursor(index)
            sent = 0
            async with self.db.read() as conn:
                newest = (await conn.execute(select(func.max(SegmentRow.id)))).scalar() or 0
            if newest <= cursor:
                return 0
            low = max(0, cursor - RACE_WINDOW_ROWS)
            while True:
                async with self.db.read() as conn:
                    stmt = select(SegmentRow.__table__).where(SegmentRow.id > low).order_by(SegmentRow.id)
                    rows = (await conn.execute(stmt.limit(INDEX_BATCH))).all()
                docs = [SegmentDoc(r.id, r.session_id, r.seq, r.start_s, r.end_s, r.text, r.emitted_at) for r in rows]
                if not docs:
                    break
                await self._bulk(index, docs)
                sent += len(docs)
                low = docs[-1].row_id
                async with self._calls("store the indexer's cursor"):
                    await self._es.index(index=self.state_index, id=index, document={"cursor": low})
                if len(docs) < INDEX_BATCH:
                    break
            return sent

    async def _entities(self, docs: Sequence[SegmentDoc]) -> list[Entities]:
        try:
            return await self.extractor.extract([d.text for d in docs])
        except Exception as e:  # the segments are still indexed, without their entities
            log.warning("entities (%s) of %d segments: %s", self.extractor.name, len(docs), e)
            return [{} for _ in docs]

    async def _bulk(self, index: str, docs: Sequence[SegmentDoc]) -> None:
        operations: list[dict[str, Any]] = []
        for d, entities in zip(docs, await self._entities(docs), strict=True):
            operations.append({"index": {"_index": index, "_id": f"{d.session_id}:{d.seq}"}})
            operations.append(document(d, entities))
        async with self._calls("index segments"):
            result = await self._es.bulk(operations=operations)
        if result.body.get("errors"):
            failed = [i for i in result.body.get("items", []) if next(iter(i.values())).get("error")]
            reason = next(iter(failed[0].values()))["error"] if failed else "unknown"
            raise SearchUnavailable(f"Elasticsearch refused {len(failed)} of {len(docs)} segments: {reason}")

    async def sync(self) -> None:
        """Index everything committed so far and make it searchable now (tests, benchmarks)."""
        await self.index_pending()
        async with self._calls("refresh the index"):
            await self._es.indices.refresh(index=self.alias)

    async def reindex(self) -> str:
        """Build the next generation from the database, then move the alias to it in one step and
        drop the old one; returns the new index's name."""
        old = await self._current()
        generation = int(old.rsplit("-", 1)[1]) + 1 if old.rsplit("-", 1)[1].isdigit() else 1
        new = f"{self.alias}-{generation}"
        async with self._calls("create the new index"):
            if await self._es.indices.exists(index=new):
                await self._es.indices.delete(index=new)
            await self._es.indices.create(index=new)
            await self._es.options(ignore_status=404).delete(index=self.state_index, id=new)
        await self.index_pending(new)
        async with self._calls("switch to the new index"):
            await self._es.indices.refresh(index=new)
            await self._es.indices.update_aliases(
                actions=[{"remove": {"index": old, "alias": self.alias}}, {"add": {"index": new, "alias": self.alias}}]
            )
            await self._es.indices.delete(index=old)
            await self._es.options(ignore_status=404).delete(index=self.state_index, id=old)
        await self.index_pending(new)  # what was committed while it was built
        return new

    # --- searching ------------------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> SearchPage:
        filters: list[dict[str, Any]] = []
        if query.session:
            filters.append({"term": {"session_id": query.session}})
        if query.since is not None:
            filters.append({"range": {"emitted_at": {"gte": query.since}}})
        for kind, name in query.entities:
            if kind not in ENTITY_FIELDS:
                raise InvalidQuery(f"entity kinds are {', '.join(ENTITY_FIELDS)}, not {kind!r}")
            filters.append({"term": {f"entities.{kind}": name}})
        body: dict[str, Any] = {
            "size": query.limit + 1,
            "query": {"bool": {"must": es_query(query.parsed), "should": es_scoring(query.parsed), "filter": filters}},
            "sort": [{"row_id": "desc"}],
            "highlight": {
                "fields": {
                    "text": {
                        "pre_tags": [HIGHLIGHT_OPEN],
                        "post_tags": [HIGHLIGHT_CLOSE],
                        "number_of_fragments": 2,
                        "fragment_size": 160,
                    }
                }
            },
            "aggs": {f: {"terms": {"field": f"entities.{f}", "size": FACET_SIZE}} for f in ENTITY_FIELDS},
        }
        if query.cursor:
            value = decode_cursor(query.cursor)
            if not isinstance(value, dict) or not isinstance(value.get("b"), int):
                raise InvalidCursor("the cursor is not one this service handed out")
            body["search_after"] = [value["b"]]
        async with self._calls("search"):
            result = await self._es.search(index=self.alias, **body)
        raw = result.body.get("hits", {}).get("hits", [])
        hits = []
        for h in raw[: query.limit]:
            src = h["_source"]
            fragments = h.get("highlight", {}).get("text") or [src["text"]]
            hits.append(
                SearchHit(
                    str(src["session_id"]),
                    int(src["seq"]),
                    float(src["start"]),
                    float(src["end"]),
                    str(src["text"]),
                    render_snippet(f" {ELLIPSIS} ".join(fragments)),
                    float(src["emitted_at"]),
                )
            )
        more = len(raw) > query.limit
        aggs = result.body.get("aggregations", {})
        facets = {
            f: [(str(b["key"]), int(b["doc_count"])) for b in aggs.get(f, {}).get("buckets", [])] for f in ENTITY_FIELDS
        }
        cursor = encode_cursor({"b": int(raw[query.limit - 1]["_source"]["row_id"])}) if more else None
        return SearchPage(hits, cursor, facets)


__all__ = ["ElasticsearchSearch", "SearchUnavailable", "document", "es_query"]
