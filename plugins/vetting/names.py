"""Name normalisation: person names, organisation names and free text, to comparable ASCII forms.

A person name is parsed into last name, first name and middle names, in either order
(``"SMITH, ROBERT J MR."``, ``"Dr. Robert J. Smith Jr."``), after folding case, accents and
punctuation and removing honorifics and suffixes. Surname particles stay with the surname
(``"Juan de la Cruz"`` → ``delacruz``), hyphens join (``Garcia-Lopez`` → ``garcialopez``).
The first name carries its nickname equivalents (``bob`` → {bob, robert}) and the initials those
names can be written with, so "B. Smith" can be compared with "Robert Smith".
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .names_data import (
    HONORIFICS,
    NICKNAME_TO_CANONICAL,
    NICKNAMES,
    ORG_SUFFIXES,
    PARTICLES,
    SUFFIXES,
)

# Letters NFKD does not decompose into ASCII.
_SPECIAL = str.maketrans(
    {"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ħ": "h"}
)
_PUNCT = '!"#$%()*+,./:;<=>?@[\\]^_`{|}~\t\r\n'
_APOSTROPHES = "'’‘`´"
# Person names: apostrophes and hyphens join (O'Brien → obrien, Garcia-Lopez → garcialopez).
_PERSON = str.maketrans({**{c: " " for c in _PUNCT}, **{c: "" for c in _APOSTROPHES}, "&": " and "})
# Organisations and free text: hyphens separate (Coca-Cola → coca cola), & reads "and".
_TEXT = str.maketrans({**{c: " " for c in _PUNCT}, **{c: "" for c in _APOSTROPHES}, "-": " ", "&": " and "})


def _ascii(s: str) -> str:
    s = s.translate(_SPECIAL)
    s = unicodedata.normalize("NFKD", s)
    return s.encode("ascii", "ignore").decode("ascii")


@lru_cache(maxsize=1 << 19)
def fold(s: str, *, person: bool = False) -> str:
    """Lower-case ASCII with punctuation removed and single spaces: ``"Zoë  O'Brien-Smith"`` →
    ``"zoe obrien-smith"`` (``person=True``: hyphens kept, for ``parse_person_name``) or
    ``"zoe obrien smith"``."""
    s = s.lower()
    if not s.isascii():
        s = _ascii(s).lower()  # NFKC makes capitals of some letters (the modifier ᴬ becomes A)
    return " ".join(s.translate(_PERSON if person else _TEXT).split())


def normalise_text(s: str) -> str:
    """Free text (employer, occupation, city) for comparison."""
    return fold(s)


@lru_cache(maxsize=1 << 16)
def first_keys(first: str) -> frozenset[str]:
    """The first name and the canonical names it is a nickname or variant of."""
    if not first:
        return frozenset()
    return frozenset({first}) | NICKNAME_TO_CANONICAL.get(first, frozenset())


def canonical_first(first: str) -> str:
    """One canonical form of a first name, for donor keys: the name itself when it is canonical,
    else the alphabetically first name it is a nickname of."""
    if not first or first in NICKNAMES:
        return first
    canon = NICKNAME_TO_CANONICAL.get(first)
    return min(canon) if canon else first


@lru_cache(maxsize=1 << 16)
def initials(first: str) -> frozenset[str]:
    """Letters the name can be abbreviated to: its own, its canonical names' and their nicknames'
    (Robert may be written "R." or, as Bob, "B.")."""
    if not first:
        return frozenset()
    out = {first[0]}
    for canon in NICKNAME_TO_CANONICAL.get(first, ()):
        out.add(canon[0])
        out.update(n[0] for n in NICKNAMES.get(canon, ()))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class PersonName:
    """A parsed person name.

    Attributes:
        last: the surname (particles and hyphenated parts joined: ``delacruz``).
        first: the first given name, or an initial (one letter), or "" when absent.
        middles: further given names or initials.
        last_keys: the surname and alternatives for compound surnames (``garcialopez``, ``lopez``).
        had_comma: whether it was written "LAST, FIRST".
    """

    last: str
    first: str
    middles: tuple[str, ...] = ()
    last_keys: tuple[str, ...] = ()
    had_comma: bool = False

    @property
    def is_initial(self) -> bool:
        return len(self.first) == 1

    @property
    def first_keys(self) -> frozenset[str]:
        return first_keys(self.first)

    @property
    def first_canonical(self) -> str:
        return canonical_first(self.first)

    @property
    def initials(self) -> frozenset[str]:
        return initials(self.first)

    @property
    def middle_initial(self) -> str:
        return self.middles[0][0] if self.middles else ""

    def display(self) -> str:
        parts = [self.first, *self.middles, self.last]
        return " ".join(p for p in parts if p)


_TITLES = HONORIFICS | {"and"}  # "Dr. Robert Smith", "Mr. and Mrs. John Smith"
# after a name: suffixes and the courtesy titles FEC files put last ("SMITH, ROBERT J MR.")
_AFTER = SUFFIXES | frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "rev", "hon"})


def _strip(tokens: list[str], *, lead: frozenset[str], trail: frozenset[str]) -> list[str]:
    """Titles before a name and suffixes after it, never its only word (Major, Judge, King and
    Junior are also names)."""
    out = list(tokens)
    while len(out) > 1 and out[0] in lead:
        out.pop(0)
    while len(out) > 1 and out[-1] in trail:
        out.pop()
    return out


def _decoration(tokens: list[str]) -> bool:
    """Nothing but courtesy titles and suffixes."""
    return all(t in _AFTER or t == "and" for t in tokens)


def _tokens(s: str) -> list[str]:
    return [t.strip("-") for t in fold(s, person=True).split() if t.strip("-")]


def _parts(tokens: list[str]) -> list[str]:
    """The pieces of a compound surname (``garcia-lopez``, ``garcia lopez``), particles aside."""
    out: list[str] = []
    for t in tokens:
        out += [p for p in t.split("-") if len(p) > 1 and p not in PARTICLES and p not in out]
    return out if len(out) > 1 else []


@lru_cache(maxsize=200_000)
def parse_person_name(raw: str) -> PersonName | None:
    """Parse a person name in "LAST, FIRST MIDDLE" or "First Middle Last" order; None if nothing
    usable is left (empty, or only honorifics)."""
    s = raw
    if "," in raw:
        last_part, _, rest = raw.partition(",")
        last_tokens = _strip(_tokens(last_part), lead=_TITLES, trail=SUFFIXES)
        given_tokens = _tokens(rest)
        if last_tokens and given_tokens and not _decoration(given_tokens) and not _decoration(last_tokens):
            given = [t.replace("-", "") for t in _strip(given_tokens, lead=_TITLES, trail=_AFTER)]
            last = "".join(t.replace("-", "") for t in last_tokens)
            keys = [last, *(p for p in _parts(last_tokens) if p != last)]
            return PersonName(last, given[0], tuple(given[1:]), tuple(keys), had_comma=True)
        # "Robert Smith, Jr." (only a suffix after the comma) or ", Robert": no LAST, FIRST order
        s = last_part if last_tokens and not _decoration(last_tokens) else rest
    tokens = _tokens(s)
    if not tokens or _decoration(tokens):
        return None
    tokens = _strip(tokens, lead=_TITLES, trail=_AFTER)
    if len(tokens) == 1:
        last = tokens[0].replace("-", "")
        return PersonName(last=last, first="", last_keys=(last, *(p for p in _parts(tokens) if p != last)))
    first, middles, last_token = tokens[0].replace("-", ""), tokens[1:-1], tokens[-1]
    last_tokens = [last_token]
    while middles and middles[-1] in PARTICLES:
        last_tokens.insert(0, middles.pop())
    last = "".join(t.replace("-", "") for t in last_tokens)
    keys = [last, *(p for p in _parts(last_tokens) if p != last)]
    middles = [m.replace("-", "") for m in middles]
    if middles and len(middles[-1]) > 1 and middles[-1] + last not in keys:
        keys.append(middles[-1] + last)  # "Maria Garcia Lopez" may be the surname "Garcia Lopez"
    return PersonName(last=last, first=first, middles=tuple(middles), last_keys=tuple(keys))


@lru_cache(maxsize=1 << 18)
def normalise_org(raw: str) -> str:
    """An organisation name without punctuation, a leading "the" or trailing corporate words:
    ``"The Exxon-Mobil Corp., Inc."`` → ``"exxon mobil"``."""
    tokens: list[str] = []
    run: list[str] = []  # consecutive single letters: "u s a" (from U.S.A.) → "usa"
    for t in [*fold(raw).split(), ""]:
        if len(t) == 1:
            run.append(t)
            continue
        if run:
            tokens.append("".join(run))
            run = []
        if t:
            tokens.append(t)
    while len(tokens) > 1 and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in ORG_SUFFIXES:
        tokens = tokens[:-1]
    return " ".join(tokens)


def squash(s: str) -> str:
    """Without spaces: ``"exxon mobil"`` → ``"exxonmobil"``."""
    return s.replace(" ", "")


__all__ = [
    "PersonName",
    "canonical_first",
    "first_keys",
    "fold",
    "initials",
    "normalise_org",
    "normalise_text",
    "parse_person_name",
    "squash",
]
