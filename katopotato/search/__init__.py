"""Full-text search over committed segments: one protocol, a backend per store.

``open_search(settings, db)`` picks the backend named by ``COUCHPOTATO_SEARCH``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..db import Database
from ..entities import EntityExtractor
from ..errors import ConfigError
from .base import (
    InvalidCursor,
    SearchBackend,
    SearchHit,
    SearchPage,
    SearchQuery,
    SegmentDoc,
    render_snippet,
)
from .query import InvalidQuery, ParsedQuery, Phrase, parse


def open_search(url: str, db: Database, *, extractor: EntityExtractor | None = None) -> SearchBackend:
    """The backend for ``url`` (``sqlite://``, ``postgresql://`` or an Elasticsearch URL);
    ``extractor`` finds the entities of the segments an Elasticsearch index holds as facets."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from .fts5 import Fts5Search

        if not db.is_sqlite:
            raise ConfigError("COUCHPOTATO_SEARCH=sqlite:// needs a SQLite database")
        return Fts5Search(db)
    if scheme in ("postgres", "postgresql"):
        from .postgres import PostgresSearch

        if db.is_sqlite:
            raise ConfigError("COUCHPOTATO_SEARCH=postgresql:// needs a PostgreSQL database")
        return PostgresSearch(db)
    if scheme in ("http", "https"):
        from .elasticsearch import ElasticsearchSearch

        return ElasticsearchSearch(url, db, extractor=extractor)
    raise ConfigError(f"COUCHPOTATO_SEARCH={url!r}: use sqlite://, postgresql:// or http(s)://")


__all__ = [
    "InvalidCursor",
    "InvalidQuery",
    "ParsedQuery",
    "Phrase",
    "SearchBackend",
    "SearchHit",
    "SearchPage",
    "SearchQuery",
    "SegmentDoc",
    "open_search",
    "parse",
    "render_snippet",
]
