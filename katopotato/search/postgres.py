"""PostgreSQL full-text search, in the service's PostgreSQL database.

``segments.tsv`` is a generated ``tsvector`` (English configuration) with a GIN index, made by the
migrations, so indexing is the insert of the segment itself. Phrases become ``<->`` chains and
prefixes ``:*`` lexemes; every word is quoted, so no tsquery operator can be injected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import Database
from .base import (
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

HEADLINE_OPTIONS = (
    f'StartSel="{HIGHLIGHT_OPEN}", StopSel="{HIGHLIGHT_CLOSE}", MaxWords=30, MinWords=12, '
    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)


def _lexeme(word: str, prefix: bool = False) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")


def tsquery(parsed: ParsedQuery) -> str:
    """The ``to_tsquery`` text of a parsed query."""
    parts = []
    for p in parsed.parts:
        lexemes = [_lexeme(w, p.prefix and i == len(p.words) - 1) for i, w in enumerate(p.words)]
        parts.append("(" + " <-> ".join(lexemes) + ")")
    return " & ".join(parts)


class PostgresSearch:
    """Search with PostgreSQL's full text, in the service's database."""

    name = "postgresql-fts"
    transactional = True

    def __init__(self, db: Database) -> None:
        if db.is_sqlite:
            raise ValueError("PostgreSQL search needs the PostgreSQL database")
        self.db = db

    async def start(self) -> None:
        """The column and index are made by the migrations."""

    async def index(self, docs: Sequence[SegmentDoc], conn: AsyncConnection | None = None) -> None:
        """Nothing to do: the tsvector is generated from the row the recorder inserts."""

    async def search(self, query: SearchQuery) -> SearchPage:
        if query.entities:
            raise InvalidQuery("entity facets need the Elasticsearch search backend (COUCHPOTATO_SEARCH=http://…)")
        clauses = ["tsv @@ q"]
        params: dict[str, Any] = {
            "q": tsquery(query.parsed),
            "opts": HEADLINE_OPTIONS,
            "limit": query.limit + 1,
        }
        if query.cursor:
            value = decode_cursor(query.cursor)
            if not isinstance(value, dict) or not isinstance(value.get("b"), int):
                raise InvalidCursor("the cursor is not one this service handed out")
            clauses.append("id < :before")
            params["before"] = int(value["b"])
        if query.session:
            clauses.append("session_id = :session")
            params["session"] = query.session
        if query.since is not None:
            clauses.append("emitted_at >= :since")
            params["since"] = query.since
        sql = text(
            "SELECT id, session_id, seq, start_s, end_s, text, emitted_at, "
            "ts_headline('english', text, q, :opts) AS snip "
            "FROM segments, to_tsquery('english', :q) AS q "
            f"WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT :limit"
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(sql, params)).all()
        hits = [
            SearchHit(r.session_id, r.seq, r.start_s, r.end_s, r.text, render_snippet(r.snip), r.emitted_at)
            for r in rows[: query.limit]
        ]
        more = len(rows) > query.limit
        return SearchPage(hits, encode_cursor({"b": int(rows[query.limit - 1].id)}) if more else None)

    async def close(self) -> None:
        """The database is closed by its owner."""


__all__ = ["PostgresSearch", "tsquery"]
