"""Blocking: which watchlist entries a name is compared with at all.

People are blocked by surname. A contribution's surname (and its compound-surname alternatives)
reaches the watchlist surnames equal to it or one edit away (a substitution, insertion, deletion
or adjacent transposition), found with symmetric deletes: both sides index every string made by
deleting one character, so two strings within one edit share a key. First names are not blocked
on: nicknames (Bob/Robert), initials and typos are left to the scorer, which compares every first
name under the surname with ``rapidfuzz.process.cdist`` at once. The work grows with the number of
contributions times the number of namesakes, not times the list's size.

Organisations are blocked by their significant tokens and by the first four letters of their
squashed name ("exxonmobil" reaches "exxon mobil").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .constants import MIN_DELETE_LAST_LEN
from .names_data import ORG_STOPWORDS


def one_deletes(s: str) -> set[str]:
    """Every string made by deleting one character of ``s``."""
    return {s[:i] + s[i + 1 :] for i in range(len(s))}


class SurnameBlocker:
    """Watchlist surnames, and the entries behind each.

    Attributes:
        entries_by_key: surname key → indices of the entries carrying it (primary or alternative).
    """

    def __init__(self, keys_per_entry: Sequence[Iterable[str]]) -> None:
        self.entries_by_key: dict[str, list[int]] = {}
        for i, keys in enumerate(keys_per_entry):
            for k in dict.fromkeys(keys):
                self.entries_by_key.setdefault(k, []).append(i)
        self._by_delete: dict[str, list[str]] = {}
        for k in self.entries_by_key:
            if len(k) >= MIN_DELETE_LAST_LEN:
                for d in one_deletes(k):
                    self._by_delete.setdefault(d, []).append(k)
        self._similar: dict[str, tuple[str, ...]] = {}

    def similar(self, key: str) -> tuple[str, ...]:
        """Watchlist surname keys equal to ``key`` or one edit away (cached)."""
        hit = self._similar.get(key)
        if hit is not None:
            return hit
        out: dict[str, None] = {}
        if key in self.entries_by_key:
            out[key] = None
        if len(key) >= MIN_DELETE_LAST_LEN:
            probes = one_deletes(key)
            probes.add(key)
            for p in probes:
                if len(p) >= MIN_DELETE_LAST_LEN - 1:
                    for k in self._by_delete.get(p, ()):
                        out[k] = None
            for p in probes:  # a watchlist surname one character shorter than key
                if p in self.entries_by_key and len(p) >= MIN_DELETE_LAST_LEN:
                    out[p] = None
        found = tuple(out)
        self._similar[key] = found
        return found

    def candidates(self, keys: Iterable[str]) -> set[int]:
        """Indices of the entries a name with these surname keys is compared with."""
        out: set[int] = set()
        for key in keys:
            for k in self.similar(key):
                out.update(self.entries_by_key[k])
        return out


def org_block_keys(org: str) -> set[str]:
    """Blocking keys of a normalised organisation name: its significant tokens and a squashed prefix."""
    tokens = org.split()
    keys = {t for t in tokens if len(t) > 2 and t not in ORG_STOPWORDS}
    squashed = "".join(tokens)
    if len(squashed) >= 4:
        keys.add("^" + squashed[:4])
    if not keys and squashed:
        keys.add("=" + squashed)
    return keys


class OrgBlocker:
    """Organisation entries by blocking key."""

    def __init__(self, orgs: Sequence[str]) -> None:
        self.entries_by_key: dict[str, list[int]] = {}
        for i, org in enumerate(orgs):
            for k in org_block_keys(org):
                self.entries_by_key.setdefault(k, []).append(i)

    def candidates(self, org: str) -> set[int]:
        out: set[int] = set()
        for k in org_block_keys(org):
            out.update(self.entries_by_key.get(k, ()))
        return out


__all__ = ["OrgBlocker", "SurnameBlocker", "one_deletes", "org_block_keys"]
