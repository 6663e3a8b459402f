"""Elasticsearch search, for ``COUCHPOTATO_SEARCH=http(s)://host:9200[/index]``.

Spoken to over its REST API with aiohttp (no client library). Documents are keyed by session and
seq, so indexing again after a crash is harmless; pages are ordered by the segment's row id in the
database (newest first) and continued with ``search_after``. Indexing happens after the database
commit: a segment is searchable about a second (the index refresh interval) after it is committed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from sqlalchemy.ext.asyncio import AsyncConnection

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
from .query import ParsedQuery

DEFAULT_INDEX = "couchpotato-segments"
REQUEST_TIMEOUT_S = 10.0
MAPPINGS = {
    "properties": {
        "row_id": {"type": "long"},
        "session_id": {"type": "keyword"},
        "seq": {"type": "integer"},
        "start": {"type": "double"},
        "end": {"type": "double"},
        "emitted_at": {"type": "double"},
        "text": {"type": "text", "analyzer": "english"},
    }
}


def es_query(parsed: ParsedQuery) -> list[dict[str, Any]]:
    """One clause per part, all required."""
    clauses: list[dict[str, Any]] = []
    for p in parsed.parts:
        words = " ".join(p.words)
        if p.prefix:
            clauses.append({"match_phrase_prefix": {"text": {"query": words, "max_expansions": 64}}})
        elif len(p.words) == 1:
            clauses.append({"match": {"text": {"query": words}}})
        else:
            clauses.append({"match_phrase": {"text": {"query": words}}})
    return clauses


class ElasticsearchSearch:
    """Search in an Elasticsearch index."""

    name = "elasticsearch"
    transactional = False

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"COUCHPOTATO_SEARCH={url!r} is not an Elasticsearch http(s) URL")
        self.index_name = parts.path.strip("/") or DEFAULT_INDEX
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urlunsplit((parts.scheme, netloc, "", "", ""))
        self._auth = aiohttp.BasicAuth(parts.username, parts.password or "") if parts.username else None
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(auth=self._auth, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        status, _ = await self._call("HEAD", f"/{self.index_name}", ok=(200, 404))
        if status == 404:
            await self._call("PUT", f"/{self.index_name}", {"mappings": MAPPINGS}, ok=(200, 400))

    async def _call(
        self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201), ndjson: str = ""
    ) -> tuple[int, Any]:
        if self._http is None:
            raise SearchUnavailable("the Elasticsearch backend is not started")
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        data = ndjson or (json.dumps(body) if body is not None else None)
        try:
            async with self._http.request(method, self.base + path, data=data, headers=headers) as resp:
                payload = await resp.json(content_type=None) if method != "HEAD" else None
                if resp.status not in ok:
                    raise SearchUnavailable(f"Elasticsearch answered {resp.status} to {method} {path}")
                return resp.status, payload
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SearchUnavailable(f"cannot reach Elasticsearch at {self.base}: {e}") from e

    async def index(self, docs: Sequence[SegmentDoc], conn: AsyncConnection | None = None) -> None:
        if not docs:
            return
        lines = []
        for d in docs:
            lines.append(json.dumps({"index": {"_index": self.index_name, "_id": f"{d.session_id}:{d.seq}"}}))
            lines.append(
                json.dumps(
                    {
                        "row_id": d.row_id,
                        "session_id": d.session_id,
                        "seq": d.seq,
                        "start": d.start,
                        "end": d.end,
                        "emitted_at": d.emitted_at,
                        "text": d.text,
                    }
                )
            )
        _, payload = await self._call("POST", "/_bulk", ndjson="\n".join(lines) + "\n")
        if isinstance(payload, dict) and payload.get("errors"):
            raise SearchUnavailable("Elasticsearch refused some documents of a bulk index")

    async def refresh(self) -> None:
        """Make everything indexed so far searchable now (tests, benchmarks)."""
        await self._call("POST", f"/{self.index_name}/_refresh")

    async def search(self, query: SearchQuery) -> SearchPage:
        filters: list[dict[str, Any]] = []
        if query.session:
            filters.append({"term": {"session_id": query.session}})
        if query.since is not None:
            filters.append({"range": {"emitted_at": {"gte": query.since}}})
        body: dict[str, Any] = {
            "size": query.limit + 1,
            "query": {"bool": {"must": es_query(query.parsed), "filter": filters}},
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
        }
        if query.cursor:
            value = decode_cursor(query.cursor)
            if not isinstance(value, dict) or not isinstance(value.get("b"), int):
                raise InvalidCursor("the cursor is not one this service handed out")
            body["search_after"] = [value["b"]]
        _, payload = await self._call("POST", f"/{self.index_name}/_search", body)
        raw = payload.get("hits", {}).get("hits", []) if isinstance(payload, dict) else []
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
        return SearchPage(hits, encode_cursor({"b": int(raw[query.limit - 1]["_source"]["row_id"])}) if more else None)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


__all__ = ["ElasticsearchSearch", "SearchUnavailable", "es_query"]
