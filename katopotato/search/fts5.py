"""SQLite FTS5 search, in the service's database file.

``segments_fts`` is an external-content FTS5 table over ``segments`` (created by the migrations)
with the porter stemmer: the text is stored once, the index holds the terms. Queries walk the
index newest first (by row id, which grows with commit time) and stop at the page size, so a page
costs about the same at 10 thousand or a million segments; ``since`` becomes a row-id bound found
through the ``emitted_at`` index (plus an exact filter), and ``session`` a column filter inside the
MATCH expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import Database
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

SNIPPET_TOKENS = 24
_NO_BOUND = 2**63 - 1

_INSERT = text("INSERT INTO segments_fts(rowid, text, session_id) VALUES (:row_id, :text, :session_id)")
_SEARCH = text(
    "SELECT s.id, s.session_id, s.seq, s.start_s, s.end_s, s.text, s.emitted_at, "
    "snippet(segments_fts, 0, :open, :close, :ellipsis, :tokens) AS snip "
    "FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid "
    "WHERE segments_fts MATCH :match AND segments_fts.rowid < :before AND segments_fts.rowid >= :after "
    "AND s.emitted_at >= :since "
    "ORDER BY segments_fts.rowid DESC LIMIT :limit"
)
# ``since`` as a row-id bound: the smallest id among rows committed within SINCE_MARGIN_S of the
# first row at or after ``since``. Ids follow commit order except for commits racing each other
# (milliseconds apart), so every later row has a larger id; the rows are then filtered on
# emitted_at exactly. Both lookups walk the emitted_at index over a bounded window (a plain
# min(id) with a range on emitted_at would walk the primary key from the oldest row instead).
_FIRST_AT = text("SELECT emitted_at FROM segments WHERE emitted_at >= :since ORDER BY emitted_at LIMIT 1")
_MIN_ID_BETWEEN = text(
    "SELECT min(id) FROM segments INDEXED BY ix_segments_emitted WHERE emitted_at BETWEEN :lo AND :hi"
)
SINCE_MARGIN_S = 60.0


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def match_expression(parsed: ParsedQuery, session: str | None = None) -> str:
    """The FTS5 MATCH string: every part a quoted phrase (so no operator can be injected)."""
    phrases = " ".join(_quote(" ".join(p.words)) + ("*" if p.prefix else "") for p in parsed.parts)
    expr = f"text : ({phrases})"
    if session:
        expr += f" AND session_id : {_quote(session)}"
    return expr


class Fts5Search:
    """Search with FTS5 in the SQLite database."""

    name = "sqlite-fts5"
    transactional = True

    def __init__(self, db: Database) -> None:
        if not db.is_sqlite:
            raise ValueError("FTS5 search needs the SQLite database")
        self.db = db

    async def start(self) -> None:
        """The table is made by the migrations; nothing else to do."""

    async def index(self, docs: Sequence[SegmentDoc], conn: AsyncConnection | None = None) -> None:
        rows = [{"row_id": d.row_id, "text": d.text, "session_id": d.session_id} for d in docs]
        if not rows:
            return
        if conn is not None:
            await conn.execute(_INSERT, rows)
            return
        async with self.db.write() as own:
            await own.execute(_INSERT, rows)

    async def search(self, query: SearchQuery) -> SearchPage:
        if query.entities:
            raise InvalidQuery("entity facets need the Elasticsearch search backend (COUCHPOTATO_SEARCH=http://…)")
        before = _NO_BOUND
        if query.cursor:
            value = decode_cursor(query.cursor)
            if not isinstance(value, dict) or not isinstance(value.get("b"), int):
                raise InvalidCursor("the cursor is not one this service handed out")
            before = int(value["b"])
        params: dict[str, Any] = {
            "open": HIGHLIGHT_OPEN,
            "close": HIGHLIGHT_CLOSE,
            "ellipsis": ELLIPSIS,
            "tokens": SNIPPET_TOKENS,
            "match": match_expression(query.parsed, query.session),
            "before": before,
            "after": 0,
            "since": query.since if query.since is not None else float("-inf"),
            "limit": query.limit + 1,
        }
        async with self.db.read() as conn:
            if query.since is not None:
                first_at = (await conn.execute(_FIRST_AT, {"since": query.since})).scalar()
                if first_at is None:
                    return SearchPage([], None)
                window = {"lo": query.since, "hi": float(first_at) + SINCE_MARGIN_S}
                params["after"] = int((await conn.execute(_MIN_ID_BETWEEN, window)).scalar_one())
            rows = (await conn.execute(_SEARCH, params)).all()
        hits = [
            SearchHit(r.session_id, r.seq, r.start_s, r.end_s, r.text, render_snippet(r.snip), r.emitted_at)
            for r in rows[: query.limit]
            if query.session is None or r.session_id == query.session
        ]
        more = len(rows) > query.limit
        return SearchPage(hits, encode_cursor({"b": int(rows[query.limit - 1].id)}) if more else None)

    async def close(self) -> None:
        """The database is closed by its owner."""


__all__ = ["Fts5Search", "match_expression"]
