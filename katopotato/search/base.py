"""The search backend protocol, and the records that cross it.

Backends index committed segments and answer queries newest first, paged by an opaque cursor.
A backend that lives in the service's database (FTS5, PostgreSQL) is ``transactional``: the
recorder calls ``index`` inside the very transaction that commits the segment, so the index can
never miss or repeat a committed segment. Others (Elasticsearch) are called after the commit,
idempotently (a segment's document id is its session and seq).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import InvalidCursor
from .query import ParsedQuery

# Snippets are built with these private-use markers around matches, then escaped for HTML and
# turned into <mark> tags, so a transcript's own "<" or "&" can never become markup.
HIGHLIGHT_OPEN = "\ue000"
HIGHLIGHT_CLOSE = "\ue001"
ELLIPSIS = "…"


@dataclass(frozen=True)
class SegmentDoc:
    """A committed segment to index. ``row_id`` is its id in the ``segments`` table."""

    row_id: int
    session_id: str
    seq: int
    start: float
    end: float
    text: str
    emitted_at: float


@dataclass(frozen=True)
class SearchQuery:
    """Attributes:
    parsed: the query (see query.py).
    session: only this session's segments.
    since: only segments committed at or after this Unix time.
    limit: hits per page.
    cursor: where the previous page stopped.
    entities: only segments that mention these, as (kind, name) pairs (kind: people, places,
        organisations); backends without entity facets refuse it with InvalidQuery.
    """

    parsed: ParsedQuery
    session: str | None = None
    since: float | None = None
    limit: int = 20
    cursor: str | None = None
    entities: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SearchHit:
    """A matching segment: ``snippet`` is HTML-safe text with ``<mark>`` around the matches."""

    session_id: str
    seq: int
    start: float
    end: float
    text: str
    snippet: str
    emitted_at: float


@dataclass(frozen=True)
class SearchPage:
    """A page of hits; ``facets`` (backends that have them: Elasticsearch) counts the entities
    mentioned in all the matching segments, per kind: ``{"people": [("Buttigieg", 12), …]}``."""

    hits: list[SearchHit]
    next_cursor: str | None
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    """Full-text search over committed segments."""

    name: str
    transactional: bool

    async def start(self) -> None:
        """Connect, create what is missing."""
        ...

    async def index(self, docs: Sequence[SegmentDoc], conn: AsyncConnection | None = None) -> None:
        """Make ``docs`` searchable; ``conn`` is the committing transaction for transactional backends."""
        ...

    async def search(self, query: SearchQuery) -> SearchPage:
        """Hits newest first; raises InvalidCursor for a cursor it did not make."""
        ...

    async def close(self) -> None: ...


def render_snippet(marked: str) -> str:
    """Escape a snippet marked with HIGHLIGHT_OPEN/CLOSE for HTML and mark its matches."""
    return html.escape(marked, quote=False).replace(HIGHLIGHT_OPEN, "<mark>").replace(HIGHLIGHT_CLOSE, "</mark>")


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError) as e:
        raise InvalidCursor("the cursor is not one this service handed out") from e


__all__ = [
    "ELLIPSIS",
    "HIGHLIGHT_CLOSE",
    "HIGHLIGHT_OPEN",
    "InvalidCursor",
    "SearchBackend",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SegmentDoc",
    "decode_cursor",
    "encode_cursor",
    "render_snippet",
]
