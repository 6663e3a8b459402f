"""The search query language, parsed once and translated by each backend.

    library                 a term (stemmed: "libraries" matches too)
    "new library"           a phrase: these words, in this order
    libr*                   a prefix term (at least two characters before the star)
    "opening hou"*          a phrase whose last word is a prefix
    budget "next month"     several parts: all must match

Punctuation inside a part splits it into words (``don't`` is the phrase "don t"), so every
backend sees plain words and the query cannot inject operator syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidQuery

MAX_QUERY_CHARS = 500
MAX_PARTS = 16
MIN_PREFIX_CHARS = 2
_WORD = re.compile(r"[^\W_]+")
_PART = re.compile(r'"([^"]*)"?(\*?)|([^\s"]+)')


@dataclass(frozen=True)
class Phrase:
    """Words that must occur in this order; a single word is a term. ``prefix``: the last word is
    a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """All parts must match."""

    parts: tuple[Phrase, ...]

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(w for p in self.parts for w in p.words)


def parse(q: str) -> ParsedQuery:
    """Parse a user's query; raises InvalidQuery with a message meant for them."""
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is longer than {MAX_QUERY_CHARS} characters")
    parts: list[Phrase] = []
    for m in _PART.finditer(q):
        if m.group(3) is not None:
            chunk = m.group(3)
            prefix = chunk.endswith("*")
        else:
            chunk = m.group(1)
            prefix = bool(m.group(2))
        words = tuple(w.lower() for w in _WORD.findall(chunk))
        if not words:
            continue
        if prefix and len(words[-1]) < MIN_PREFIX_CHARS:
            raise InvalidQuery(f"a prefix needs at least {MIN_PREFIX_CHARS} characters before the *")
        parts.append(Phrase(words, prefix))
    if not parts:
        raise InvalidQuery("the query has no words to search for")
    if len(parts) > MAX_PARTS:
        raise InvalidQuery(f"the query has more than {MAX_PARTS} parts")
    return ParsedQuery(tuple(dict.fromkeys(parts)))


__all__ = ["InvalidQuery", "ParsedQuery", "Phrase", "parse"]
