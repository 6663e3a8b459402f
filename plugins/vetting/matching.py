"""Matching contributors against watchlist entries: names, evidence, organisations, keywords.

People: for each surname key among the contributions, the watchlist entries under that surname or
one edit away (``blocking``) are scored against every contributor with that surname at once: first
names with ``rapidfuzz.process.cdist`` (Jaro-Winkler), nickname equivalence and initials with
bit masks in numpy. Pairs whose name score can reach ``name_floor`` are scored exactly:

- surname: 1 if equal, Jaro-Winkler if one edit apart, 0.97 through a compound-surname alternative;
- first name: 1 for the same name or a nickname of it (Bob = Robert); 0.90 for a compatible
  initial (R. or B. for Robert); 0 for two different known given names (John is not Joan);
  Jaro-Winkler for a name the tables do not know, when at least 0.85 and the first letters agree
  (a typo), else 0;
  0.70 when one side has none;
- name = 0.5·surname + 0.5·first, +0.02 when middle initials agree, −0.10 when they conflict.

Evidence from the contribution row then moves the score (``constants``, about 0.03 per natural-log
unit of its likelihood ratio): employer matches +0.15 / differs −0.05; same city +0.12, same state
+0.03, a neighbouring state +0.03, elsewhere −0.11; occupation +0.02. Generic employers (retired,
self-employed, …) count neither way.

Organisations: employer (and the name of a contributor that is not a person) against organisation
entries, blocked by tokens, scored with token-sort / squashed ratio, or containment of a
multi-word entry. Keywords: whole-word phrases in the employer or occupation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from . import constants as c
from .blocking import OrgBlocker, SurnameBlocker
from .names import PersonName, first_keys, fold, initials, normalise_org, squash
from .names_data import GENERIC_EMPLOYERS, KNOWN_GIVEN_NAMES, STATE_NEIGHBOURS
from .records import WatchEntry

_IDS: dict[str, int] = {}  # canonical first-name → small int, for the equivalence bit masks


def _name_id(name: str) -> int:
    i = _IDS.get(name)
    if i is None:
        i = _IDS[name] = len(_IDS)
    return i


@dataclass(frozen=True, slots=True)
class _FirstFeatures:
    eq1: int  # bit masks of the first name's equivalence classes (two hashes: few false positives)
    eq2: int
    letters: int  # bit mask of the initials it may be written with
    letter: int  # bit of its own first letter
    is_initial: bool
    known: bool
    present: bool


def _features(first: str) -> _FirstFeatures:
    if not first:
        return _FirstFeatures(0, 0, 0, 0, False, False, False)
    eq1 = eq2 = 0
    for k in first_keys(first):
        i = _name_id(k)
        eq1 |= 1 << (i % 64)
        eq2 |= 1 << ((i // 64) % 64)
    letters = 0
    for ch in initials(first):
        letters |= 1 << (ord(ch) - 97) if "a" <= ch <= "z" else 0
    letter = 1 << (ord(first[0]) - 97) if "a" <= first[0] <= "z" else 0
    return _FirstFeatures(eq1, eq2, letters, letter, len(first) == 1, first in KNOWN_GIVEN_NAMES, True)


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A contributor name scored against a person entry, before evidence.

    Attributes:
        entry: the entry's index in the index's ``entries``.
        score: the name score (0–1).
        notes: how the name matched, for the reason ("nickname bob = robert", "initial r.", …).
    """

    entry: int
    score: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    """Points from employer, place and occupation, and their one-line descriptions."""

    points: float
    notes: tuple[str, ...] = ()


@dataclass
class _Arrays:
    first: NDArray[np.object_]
    eq1: NDArray[np.uint64]
    eq2: NDArray[np.uint64]
    letters: NDArray[np.uint32]
    letter: NDArray[np.uint32]
    is_initial: NDArray[np.bool_]
    known: NDArray[np.bool_]
    present: NDArray[np.bool_]


def _arrays(firsts: Sequence[str], cache: dict[str, _FirstFeatures]) -> _Arrays:
    feats = []
    for f in firsts:
        ft = cache.get(f)
        if ft is None:
            ft = cache[f] = _features(f)
        feats.append(ft)
    return _Arrays(
        first=np.array(list(firsts), dtype=object),
        eq1=np.array([f.eq1 for f in feats], dtype=np.uint64),
        eq2=np.array([f.eq2 for f in feats], dtype=np.uint64),
        letters=np.array([f.letters for f in feats], dtype=np.uint32),
        letter=np.array([f.letter for f in feats], dtype=np.uint32),
        is_initial=np.array([f.is_initial for f in feats], dtype=bool),
        known=np.array([f.known for f in feats], dtype=bool),
        present=np.array([f.present for f in feats], dtype=bool),
    )


def first_name_score(q: str, e: str) -> tuple[float, str]:
    """Similarity of two normalised first names (see the module docstring) and a note."""
    if not q or not e:
        return c.MISSING_FIRST_SCORE, "no first name"
    if len(q) == 1 or len(e) == 1:
        if len(q) == 1 and len(e) == 1:
            return (c.INITIAL_SCORE, f"initial {q}.") if q == e else (0.0, "")
        initial, full = (q, e) if len(q) == 1 else (e, q)
        return (c.INITIAL_SCORE, f"initial {initial}. for {full}") if initial in initials(full) else (0.0, "")
    if q == e:
        return 1.0, ""
    if first_keys(q) & first_keys(e):
        return 1.0, f"nickname {q} = {e}"
    if q in KNOWN_GIVEN_NAMES and e in KNOWN_GIVEN_NAMES:
        return 0.0, ""
    if q[0] != e[0]:
        return 0.0, ""
    jw = JaroWinkler.normalized_similarity(q, e)
    return (jw, f"first name {q} ~ {e}") if jw >= c.FIRST_NAME_TYPO_MIN else (0.0, "")


def middle_points(q: Sequence[str], e: Sequence[str]) -> tuple[float, str]:
    """Middle names: agreeing initials add, conflicting ones subtract, one side missing is neutral."""
    if not q or not e:
        return 0.0, ""
    a, b = q[0], e[0]
    if a[0] != b[0]:
        return c.MIDDLE_CONFLICT_POINTS, "middle names differ"
    if len(a) > 1 and len(b) > 1 and a != b and not (first_keys(a) & first_keys(b)):
        return c.MIDDLE_CONFLICT_POINTS, "middle names differ"
    return c.MIDDLE_MATCH_POINTS, ""


def _ratio(a: str, b: str) -> float:
    return max(fuzz.token_set_ratio(a, b), fuzz.ratio(squash(a), squash(b))) / 100.0


_MAX_AFTER_STATE = c.EMPLOYER_MATCH_POINTS + c.OCCUPATION_MATCH_POINTS


def evidence(
    entry: WatchEntry,
    *,
    employer_norm: str,
    state: str,
    city_norm: str,
    occupation_norm: str,
    need: float | None = None,
) -> Evidence | None:
    """Points for and against a person match from the contribution's employer, place and occupation.
    With ``need``, None as soon as the points cannot reach it any more (saves the slower comparisons)."""
    points = 0.0
    notes: list[str] = []
    if entry.state and state:
        if state == entry.state:
            same_city = city_norm == entry.city_norm or fuzz.ratio(city_norm, entry.city_norm) >= 90
            if entry.city_norm and city_norm and same_city:
                points += c.CITY_MATCH_POINTS
                notes.append("same city")
            else:
                points += c.STATE_MATCH_POINTS
                notes.append("same state")
        elif state in STATE_NEIGHBOURS.get(entry.state, ()):
            points += c.STATE_NEIGHBOUR_POINTS
            notes.append(f"neighbouring state ({state}/{entry.state})")
        else:
            points += c.STATE_MISMATCH_POINTS
            notes.append(f"state differs ({state}/{entry.state})")
    if need is not None and points + _MAX_AFTER_STATE < need:
        return None
    if entry.employer_norm and employer_norm not in GENERIC_EMPLOYERS and entry.employer_norm not in GENERIC_EMPLOYERS:
        sim = 1.0 if employer_norm == entry.employer_norm else _ratio(employer_norm, entry.employer_norm)
        if sim >= c.EMPLOYER_MATCH_MIN:
            points += c.EMPLOYER_MATCH_POINTS
            notes.insert(0, "employer matches")
        elif sim < c.EMPLOYER_MISMATCH_MAX:
            points += c.EMPLOYER_MISMATCH_POINTS
            notes.insert(0, "employer differs")
    if (
        entry.occupation_norm
        and occupation_norm not in GENERIC_EMPLOYERS
        and fuzz.token_set_ratio(occupation_norm, entry.occupation_norm) >= 90
    ):
        points += c.OCCUPATION_MATCH_POINTS
        notes.append("occupation matches")
    return Evidence(points, tuple(notes))


@dataclass
class WatchlistIndex:
    """Watchlist entries, indexed for matching. Build once per process and reuse across chunks.

    Attributes:
        entries: every entry, by index.
        people, orgs, keywords: indices of the entries of each kind.
    """

    entries: list[WatchEntry]
    people: list[int] = field(default_factory=list)
    orgs: list[int] = field(default_factory=list)
    keywords: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, e in enumerate(self.entries):
            {"person": self.people, "organization": self.orgs, "keyword": self.keywords}[e.kind].append(i)
        self._fcache: dict[str, _FirstFeatures] = {}
        people = [self.entries[i] for i in self.people]
        self._p = _arrays([e.first for e in people], self._fcache)
        self._p_last = [e.last for e in people]
        self._surnames = SurnameBlocker([e.last_keys for e in people])
        self._by_surname: dict[str, tuple[NDArray[np.intp], NDArray[np.float32]]] = {}
        self._org_blocker = OrgBlocker([self.entries[i].org for i in self.orgs])
        self._org_cache: dict[str, list[tuple[int, float]]] = {}
        self._match_cache: dict[float, dict[PersonName, list[NameMatch]]] = {}
        phrases = sorted({self.entries[i].org for i in self.keywords if self.entries[i].org}, key=len, reverse=True)
        self._keyword_re = re.compile(r"\b(" + "|".join(map(re.escape, phrases)) + r")\b") if phrases else None
        self._keyword_entries: dict[str, list[int]] = {}
        self._keyword_cache: dict[str, list[tuple[int, str]]] = {}
        for i in self.keywords:
            self._keyword_entries.setdefault(self.entries[i].org, []).append(i)

    # --- people -----------------------------------------------------------------------------------

    def _surname_block(self, key: str) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
        """People (positions in ``self.people``) under surnames similar to ``key``, with the surname
        similarity of each."""
        hit = self._by_surname.get(key)
        if hit is not None:
            return hit
        best: dict[int, float] = {}
        for k in self._surnames.similar(key):
            sim = 1.0 if k == key else JaroWinkler.normalized_similarity(key, k)
            for p in self._surnames.entries_by_key[k]:
                s = sim if self._p_last[p] == k else sim * c.COMPOUND_SURNAME_SCORE
                if s > best.get(p, -1.0):
                    best[p] = s
        out = (np.fromiter(best.keys(), dtype=np.intp, count=len(best)),
               np.fromiter(best.values(), dtype=np.float32, count=len(best)))  # fmt: skip
        self._by_surname[key] = out
        return out

    def match_people(self, names: Sequence[PersonName], *, floor: float = c.NAME_FLOOR) -> list[list[NameMatch]]:
        """For each name, the person entries whose name score is at least ``floor``, best first.

        Every (name, entry) pair that blocking lets through is scored at once, as flat numpy
        arrays: first-name equivalence and initials by bit masks, Jaro-Winkler with
        ``rapidfuzz.process.cpdist`` only for the pairs that need it (a name the tables do not
        know); pairs that can reach ``floor`` are then scored exactly."""
        # a donor's rows are spread over the chunks: names already matched in this process are reused
        cache = self._match_cache.setdefault(floor, {})
        result: list[list[NameMatch] | None] = [cache.get(n) for n in names]
        todo = [i for i, r in enumerate(result) if r is None]
        if todo:
            fresh = self._match_people([names[i] for i in todo], floor)
            if len(cache) > c.MATCH_CACHE_NAMES:
                cache.clear()
            for i, found in zip(todo, fresh, strict=True):
                result[i] = cache[names[i]] = found
        return [r if r is not None else [] for r in result]

    def _match_people(self, names: Sequence[PersonName], floor: float) -> list[list[NameMatch]]:
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            for k in n.last_keys:
                groups.setdefault(k, []).append(i)
        w = c.LAST_NAME_WEIGHT
        slack = c.MIDDLE_MATCH_POINTS + 1e-6
        qs: list[NDArray[np.intp]] = []
        es: list[NDArray[np.intp]] = []
        ls: list[NDArray[np.float32]] = []
        for key, members in groups.items():
            cand, last_sim = self._surname_block(key)
            # the best a pair can score with a perfect first name: skip blocks that cannot reach floor
            if not cand.size or w * float(last_sim.max()) + (1 - w) + slack < floor:
                continue
            mem = np.asarray(members, dtype=np.intp)
            # a surname key that is a compound alternative of the contributor's name counts less
            factor = np.fromiter(
                (1.0 if names[i].last == key else c.COMPOUND_SURNAME_SCORE for i in members),
                dtype=np.float32, count=len(members),
            )  # fmt: skip
            qs.append(np.repeat(mem, cand.size))
            es.append(np.tile(cand, mem.size))
            ls.append(np.outer(factor, last_sim).ravel())
        found: list[dict[int, NameMatch]] = [{} for _ in names]
        if not qs:
            return [[] for _ in names]
        q = np.concatenate(qs)
        e = np.concatenate(es)
        lsim = np.concatenate(ls)
        qa = _arrays([n.first for n in names], self._fcache)
        ea = self._p
        same = ((qa.eq1[q] & ea.eq1[e]) != 0) & ((qa.eq2[q] & ea.eq2[e]) != 0)
        init = (qa.is_initial[q] & ((qa.letter[q] & ea.letters[e]) != 0)) | (
            ea.is_initial[e] & ((ea.letter[e] & qa.letters[q]) != 0)
        )
        missing = ~(qa.present[q] & ea.present[e])
        first = np.zeros(q.size, dtype=np.float32)
        # a typo is looked for only where the first letters agree (typos rarely change the first letter)
        typo = np.flatnonzero((qa.letter[q] == ea.letter[e]) & ~(same | init | missing | (qa.known[q] & ea.known[e])))
        if typo.size:
            jw = process.cpdist(
                qa.first[q[typo]].tolist(), ea.first[e[typo]].tolist(),
                scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=1,
            )  # fmt: skip
            first[typo] = np.where(jw >= c.FIRST_NAME_TYPO_MIN, jw, np.float32(0.0))
        first[init] = c.INITIAL_SCORE
        first[same] = 1.0
        first[missing] = c.MISSING_FIRST_SCORE
        keep = np.flatnonzero(w * lsim + (1 - w) * first + slack >= floor)
        people = self.people
        for name_i, p, sim in zip(q[keep].tolist(), e[keep].tolist(), lsim[keep].tolist(), strict=True):
            entry_i = people[p]
            m = self._score_pair(names[name_i], entry_i, sim)
            if m.score >= floor:
                prev = found[name_i].get(entry_i)
                if prev is None or m.score > prev.score:
                    found[name_i][entry_i] = m
        return [sorted(d.values(), key=lambda m: -m.score) for d in found]

    def _score_pair(self, q: PersonName, entry_i: int, last_sim: float) -> NameMatch:
        e = self.entries[entry_i]
        f, note = first_name_score(q.first, e.first)
        mid, mid_note = middle_points(q.middles, e.middles)
        w = c.LAST_NAME_WEIGHT
        score = min(1.0, max(0.0, w * last_sim + (1 - w) * f + mid))
        notes = [n for n in (note, mid_note) if n]
        if last_sim < 1.0:
            notes.insert(0, f"surname {q.last} ~ {e.last}")
        return NameMatch(entry_i, round(score, 4), tuple(notes))

    def score_name(self, q: PersonName, entry_i: int) -> NameMatch:
        """The exact name score of one pair (tests, explanations), blocking aside."""
        e = self.entries[entry_i]
        best = 0.0
        for k in q.last_keys:
            for ek in e.last_keys:
                sim = 1.0 if k == ek else JaroWinkler.normalized_similarity(k, ek)
                sim *= 1.0 if k == q.last else c.COMPOUND_SURNAME_SCORE
                sim *= 1.0 if ek == e.last else c.COMPOUND_SURNAME_SCORE
                best = max(best, sim)
        return self._score_pair(q, entry_i, best)

    # --- organisations and keywords ------------------------------------------------------------------

    def match_org(self, text: str, *, threshold: float = c.ORG_THRESHOLD) -> list[tuple[int, float]]:
        """Organisation entries matching an employer or organisation name, with their scores."""
        org = normalise_org(text)
        if not org or org in GENERIC_EMPLOYERS or not self.orgs:
            return []
        hit = self._org_cache.get(org)
        if hit is not None:
            return hit
        out: list[tuple[int, float]] = []
        tokens = set(org.split())
        for p in self._org_blocker.candidates(org):
            entry_i = self.orgs[p]
            e = self.entries[entry_i]
            score = max(fuzz.token_sort_ratio(org, e.org), fuzz.ratio(squash(org), squash(e.org))) / 100.0
            e_tokens = e.org.split()
            if len(e_tokens) >= 2 and set(e_tokens) <= tokens:
                score = max(score, 0.95)
            if score >= threshold:
                out.append((entry_i, round(score, 4)))
        out.sort(key=lambda t: -t[1])
        self._org_cache[org] = out
        return out

    def match_keywords(self, text: str) -> list[tuple[int, str]]:
        """Keyword entries whose phrase occurs in ``text`` as whole words, with the phrase."""
        if self._keyword_re is None or not text:
            return []
        hit = self._keyword_cache.get(text)
        if hit is not None:
            return hit
        out: list[tuple[int, str]] = []
        for phrase in dict.fromkeys(m.group(1) for m in self._keyword_re.finditer(fold(text))):
            out += [(i, phrase) for i in self._keyword_entries.get(phrase, ())]
        if len(self._keyword_cache) < 1 << 18:
            self._keyword_cache[text] = out
        return out


__all__ = ["Evidence", "NameMatch", "WatchlistIndex", "evidence", "first_name_score", "middle_points"]
