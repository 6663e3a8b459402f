"""The CPU work of a vetting run, as plain functions of bytes and options, run in a process pool (never
on the event loop):

- ``compile_watchlists``: parse and normalise every watchlist once, into one JSON document;
- ``vet_chunk``: read one chunk of contributions, apply the per-row rules, match every contributor
  against the watchlists, and return the chunk's flags, its person-name candidates (scored before
  the common-name adjustment, which needs the whole file) and its ledger for the per-donor rules;
- ``collate``: merge the chunks, weigh common names across the whole file, apply the per-donor
  rules, drop what reviewers cleared, and sort.

A name is "common" when many donors in the file could share it: with n_last donors of that surname,
n_first of that first name and D donors in all, about (n_last − 1)·(n_first − 1)/(D − 1) namesakes
are expected by chance, and the score loses ``COMMON_NAME_POINTS_PER_BIT`` per doubling of that number (at most
``COMMON_NAME_MAX_POINTS``). John Smith then needs evidence (same state, employer) to be flagged;
a rare name does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import math
import multiprocessing
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from . import constants as c
from . import report
from .contributions import FileFormat, decode, read_rows
from .errors import FormatError
from .matching import Evidence, NameMatch, WatchlistIndex, evidence
from .names import PersonName, normalise_org, normalise_text, parse_person_name
from .names_data import US_STATES
from .options import VetOptions
from .records import WATCH_ENTRY_FIELDS, Contribution, Decision, Flag, MalformedRow, WatchEntry
from .rules import Ledger, LedgerRow, aggregate_flags, missing_bits, row_flags
from .watchlists import WatchlistSpec, parse_watchlist

T = TypeVar("T")

# --- watchlists ----------------------------------------------------------------------------------


def compile_watchlist_part(
    data: bytes, spec: WatchlistSpec, line_offset: int = 0
) -> tuple[bytes, list[MalformedRow], dict[str, int]]:
    """One watchlist (or piece of one, see ``watchlists.split_watchlist``) parsed and normalised: its
    entries as a JSON array fragment (``join_compiled`` puts fragments together), its malformed
    records and its entries per list."""
    with _no_gc():
        entries, bad = parse_watchlist(data, spec, line_offset=line_offset)
        fragment = json.dumps([e.to_row() for e in entries], separators=(",", ":")).encode()[1:-1]
    return fragment, bad, dict(Counter(e.list for e in entries))


def join_compiled(fragments: Sequence[bytes]) -> bytes:
    """The compiled watchlist document from ``compile_watchlist_part`` fragments."""
    head = json.dumps({"v": 1, "fields": list(WATCH_ENTRY_FIELDS)}, separators=(",", ":")).encode()[:-1]
    return head + b',"entries":[' + b",".join(f for f in fragments if f) + b"]}"


def compile_watchlists(
    items: Sequence[tuple[bytes, WatchlistSpec]],
) -> tuple[bytes, list[MalformedRow], dict[str, int]]:
    """Every list's entries, normalised, as one JSON document; the malformed records; entries per list."""
    fragments: list[bytes] = []
    bad: list[MalformedRow] = []
    counts: Counter[str] = Counter()
    for data, spec in items:
        fragment, malformed, per_list = compile_watchlist_part(data, spec)
        fragments.append(fragment)
        bad += malformed
        counts.update(per_list)
    return join_compiled(fragments), bad, dict(counts)


def index_from_json(data: bytes) -> WatchlistIndex:
    try:
        doc = json.loads(data)
        if doc.get("fields") != list(WATCH_ENTRY_FIELDS):
            raise FormatError("compiled by another version of the plugin")
        entries: dict[str, WatchEntry] = {}
        for r in doc["entries"]:
            e = WatchEntry.from_row(r)
            entries.setdefault(e.subject_key, e)  # an entry twice (pieces, lists loaded twice): once
        return WatchlistIndex(list(entries.values()))
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"bad compiled watchlist: {e}") from e


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off: the CPU work allocates millions of small acyclic objects, and
    each full collection would walk them all (and the watchlist index) again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_INDEXES: OrderedDict[str, WatchlistIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()


def load_index(path: str, digest: str) -> WatchlistIndex:
    """The index of a compiled watchlist file, built once per process (by content digest)."""
    with _INDEX_LOCK:
        hit = _INDEXES.get(digest)
        if hit is not None:
            _INDEXES.move_to_end(digest)
            return hit
        with _no_gc():
            index = index_from_json(Path(path).read_bytes())
        gc.freeze()  # the index lives as long as the process: keep the collector from walking it
        _INDEXES[digest] = index
        while len(_INDEXES) > c.WATCHLIST_CACHE_ENTRIES:
            _INDEXES.popitem(last=False)
        return index


# --- one chunk -----------------------------------------------------------------------------------


@dataclass
class ChunkOutput:
    """What a chunk job hands to the collation.

    Attributes:
        rows: contributions read (malformed ones not included).
        flags: final flags (per-row FEC rules, organisations, keywords).
        candidates: person-name flags before the common-name adjustment, each
            ``{"flag": Flag dict, "raw": unclipped score, "last": surname, "first": canonical first name}``.
        ledger: the individual contributions the per-donor rules need.
        donors: donor key → [name as written, surname, canonical first name].
        malformed: rows that could not be read.
    """

    rows: int = 0
    flags: list[Flag] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    donors: dict[str, list[str]] = field(default_factory=dict)
    malformed: list[MalformedRow] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive (no pickles): the ledger's columns as arrays, the rest as JSON."""
        meta = json.dumps(
            {
                "v": 2,
                "rows": self.rows,
                "flags": [f.to_dict() for f in self.flags],
                "candidates": self.candidates,
                "donors": self.donors,
                "malformed": [m.to_dict() for m in self.malformed],
            },
            separators=(",", ":"),
        ).encode()
        buf = io.BytesIO()
        arrays = {f"ledger_{k}": v for k, v in self.ledger.arrays().items()}
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
        np.savez(buf, allow_pickle=False, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ChunkOutput:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            d = json.loads(arrays.pop("meta").tobytes())
            ledger = Ledger.from_arrays({k.removeprefix("ledger_"): v for k, v in arrays.items()})
            return cls(
                rows=int(d["rows"]), flags=[Flag.from_dict(f) for f in d["flags"]], candidates=list(d["candidates"]),
                ledger=ledger, donors=dict(d["donors"]), malformed=[MalformedRow.from_dict(m) for m in d["malformed"]],
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise FormatError(f"bad chunk output: {e}") from e


def donor_key(row: Contribution, name: PersonName | None) -> str:
    """Who gave: the input's donor id, else the normalised name and 5-digit ZIP (as the FEC groups)."""
    if row.donor_id:
        return f"id:{row.donor_id}"
    zip5 = row.zip[:5]
    if name is not None:
        return f"{name.last}|{name.first_canonical}|{zip5}"
    return f"org:{normalise_org(row.name)}|{zip5}"


def vet_rows(
    rows: Sequence[Contribution], index: WatchlistIndex, options: VetOptions, *, has_street: bool = False
) -> ChunkOutput:
    """Apply every per-row rule and the watchlists to ``rows``. Names, employers and addresses repeat
    (a donor gives several times), so each distinct value is normalised and matched once."""
    out = ChunkOutput(rows=len(rows))
    flags = out.flags
    donors = out.donors
    parsed: dict[str, tuple[PersonName | None, str, int]] = {}  # raw name → (name, donor key stem, name no.)
    names: list[PersonName] = []
    person_rows: list[tuple[Contribution, int, str]] = []
    ledger_rows: list[LedgerRow] = []
    org_hits: dict[tuple[str, str, bool], list[tuple[str, int, float, str]]] = {}
    person_types, refunds = c.PERSON_ENTITY_TYPES, c.REFUND_TRANSACTION_TYPES
    # rows of one donor repeat name, entity, ZIP, address, employer and occupation: work out each
    # such signature once (donor key, whether the per-row checks apply, missing fields, matches)
    seen: dict[tuple[str, str, str, str, str, str, str, str, str, str], tuple[str, bool, int, int, list[Any]]] = {}
    for row in rows:
        sig = (row.name, row.entity_type, row.zip, row.state, row.city, row.street, row.country, row.employer,
               row.occupation, row.donor_id)  # fmt: skip
        known = seen.get(sig)
        if known is None:
            known = seen[sig] = _signature(row, index, options, has_street, parsed, names, donors, org_hits)
        key, check, bits, number, found = known
        if not row.memo:
            if check:
                is_person = row.entity_type in person_types
                name = names[number] if number >= 0 else None
                has_name = name is not None if is_person else not key.startswith("org:|")
                flags += row_flags(row, donor_key=key, has_name=has_name, options=options)
            if bits >= 0:
                election = row.election or (f"Y{row.date // 10000}" if row.date else "")
                counted = -abs(row.amount_usd) if row.transaction_type in refunds else row.amount_usd
                ledger_rows.append(
                    (row.id, row.line, key, row.committee, election, counted, row.amount_usd, row.date, bits)
                )
        if number >= 0:
            person_rows.append((row, number, key))
        for rule, entry_i, score, reason in found:
            flags.append(_flag(row, key, rule, index.entries[entry_i], score, reason))
    out.ledger = Ledger.from_rows(ledger_rows)
    if options.enabled(c.RULE_WATCHLIST_NAME) and index.people and names:
        _person_candidates(out, index, options, names, person_rows)
    return out


def _signature(
    row: Contribution,
    index: WatchlistIndex,
    options: VetOptions,
    has_street: bool,
    parsed: dict[str, tuple[PersonName | None, str, int]],
    names: list[PersonName],
    donors: dict[str, list[str]],
    org_hits: dict[tuple[str, str, bool], list[tuple[str, int, float, str]]],
) -> tuple[str, bool, int, int, list[Any]]:
    """For a row's (name, entity, address, employer, occupation): its donor key, whether the per-row
    FEC checks can fire, its missing-field bits (-1: not an individual's), its name's number in
    ``names`` (-1: not a person) and its organisation and keyword matches."""
    is_person = row.entity_type in c.PERSON_ENTITY_TYPES
    hit = parsed.get(row.name) if is_person else None
    if hit is None:
        name = parse_person_name(row.name) if is_person and row.name else None
        stem = f"{name.last}|{name.first_canonical}|" if name is not None else f"org:{normalise_org(row.name)}|"
        number = -1
        if name is not None:
            number = len(names)
            names.append(name)
        hit = (name, stem, number)
        if is_person:
            parsed[row.name] = hit
    name, stem, number = hit
    key = f"id:{row.donor_id}" if row.donor_id else stem + row.zip[:5]
    if key not in donors:
        donors[key] = [row.name, name.last if name else "", name.first_canonical if name else ""]
    check = (
        row.entity_type in c.ORGANIZATION_ENTITY_TYPES
        or bool(row.state and row.state not in US_STATES)
        or bool(row.country)
        or (name is None if is_person else stem == "org:|")
    )
    bits = missing_bits(row, has_street=has_street) if row.entity_type in c.LIMITED_ENTITY_TYPES else -1
    org_key = (row.employer, row.occupation, True) if is_person else (row.name, "", False)
    found = org_hits.get(org_key)
    if found is None:
        found = org_hits[org_key] = _org_and_keyword_hits(org_key, index, options)
    return key, check, bits, number, found


def _person_candidates(
    out: ChunkOutput,
    index: WatchlistIndex,
    options: VetOptions,
    names: list[PersonName],
    person_rows: list[tuple[Contribution, int, str]],
) -> None:
    matches = index.match_people(names, floor=options.name_floor)
    threshold = options.match_threshold
    # a donor's rows share name, employer and address: weigh each (name, evidence) once
    weighed: dict[tuple[int, str, str, str, str], list[tuple[float, NameMatch, Evidence]]] = {}
    for row, number, key in person_rows:
        found = matches[number]
        if not found:
            continue
        wkey = (number, row.employer, row.city, row.state, row.occupation)
        kept = weighed.get(wkey)
        if kept is None:
            kept = weighed[wkey] = _weigh(index, found, row, threshold)
        if not kept:
            continue
        name = names[number]
        for raw, m, ev in kept:
            entry = index.entries[m.entry]
            how = f" ({', '.join(m.notes)})" if m.notes else ""
            reason = f"name {m.score:.2f} Jaro-Winkler to '{entry.name}' on {entry.list}{how}"
            if ev.notes:
                reason += "; " + "; ".join(ev.notes)
            flag = _flag(row, key, c.RULE_WATCHLIST_NAME, entry, min(1.0, max(0.0, raw)), reason)
            out.candidates.append(
                {"flag": flag.to_dict(), "raw": raw, "last": name.last, "first": name.first_canonical}
            )


def _weigh(
    index: WatchlistIndex, found: list[NameMatch], row: Contribution, threshold: float
) -> list[tuple[float, NameMatch, Evidence]]:
    """The name matches of one row that its evidence keeps at or above ``threshold`` (before the
    common-name adjustment), without the namesakes it points away from."""
    employer_norm = normalise_org(row.employer)
    city_norm = normalise_text(row.city)
    occupation_norm = normalise_text(row.occupation)
    scored: list[tuple[float, NameMatch, Evidence]] = []
    for m in found:
        ev = evidence(
            index.entries[m.entry], employer_norm=employer_norm, state=row.state, city_norm=city_norm,
            occupation_norm=occupation_norm, need=threshold - m.score,
        )  # fmt: skip
        if ev is None:
            continue
        raw = round(m.score + ev.points, 4)  # may exceed 1: evidence to spare for a common name
        if raw >= threshold:
            scored.append((raw, m, ev))
    if not scored:
        return scored
    # namesakes on the lists: the entry the evidence points to, not every John Smith on them
    best = max(s[0] for s in scored)
    return [s for s in scored if s[0] >= best - c.RIVAL_MARGIN]


def _flag(row: Contribution, key: str, rule: str, entry: WatchEntry, score: float, reason: str) -> Flag:
    if entry.reason:
        reason += f" [{entry.reason}]"
    return Flag(
        contribution_id=row.id, line=row.line, rule=rule, list=entry.list, matched_name=entry.name, score=score,
        reason=reason, donor_name=row.name, donor_key=key, subject_key=entry.subject_key, amount_usd=row.amount_usd,
        date=row.date, committee=row.committee, employer=row.employer, city=row.city, state=row.state,
    )  # fmt: skip


def _org_and_keyword_hits(
    org_key: tuple[str, str, bool], index: WatchlistIndex, options: VetOptions
) -> list[tuple[str, int, float, str]]:
    """(rule, entry, score, reason) for an (employer, occupation) of a person, or an organisation's name."""
    first, occupation, is_person = org_key
    texts = [("employer", first)] if is_person else [("contributor", first)]
    out: list[tuple[str, int, float, str]] = []
    if options.enabled(c.RULE_WATCHLIST_ORGANIZATION) and index.orgs:
        seen: set[int] = set()
        for what, text in texts:
            for entry_i, score in index.match_org(text, threshold=options.org_threshold):
                if entry_i not in seen:
                    seen.add(entry_i)
                    e = index.entries[entry_i]
                    reason = f"{what} '{text}' matches '{e.name}' on {e.list} ({score:.2f} token similarity)"
                    out.append((c.RULE_WATCHLIST_ORGANIZATION, entry_i, score, reason))
    if options.enabled(c.RULE_REFUSED_INDUSTRY) and index.keywords:
        if is_person:
            texts.append(("occupation", occupation))
        seen = set()
        for what, text in texts:
            for entry_i, phrase in index.match_keywords(text):
                if entry_i not in seen:
                    seen.add(entry_i)
                    reason = f"{what} '{text}' contains '{phrase}' ({index.entries[entry_i].list})"
                    out.append((c.RULE_REFUSED_INDUSTRY, entry_i, 1.0, reason))
    return out


def vet_chunk(
    data: bytes,
    fmt: dict[str, Any],
    start_line: int,
    source: str,
    index_path: str,
    digest: str,
    options: dict[str, Any],
) -> bytes:
    """One chunk: bytes of whole rows in ``fmt`` → ``ChunkOutput`` JSON (run in a pool process)."""
    file_format = FileFormat.from_dict(fmt)
    index = load_index(index_path, digest)
    opts = VetOptions.coerce(options)
    rows: list[Contribution] = []
    malformed: list[MalformedRow] = []
    with _no_gc():
        for item in read_rows(decode(data), file_format, start_line=start_line, source=source):
            if isinstance(item, Contribution):
                rows.append(item)
            else:
                malformed.append(item)
        out = vet_rows(rows, index, opts, has_street="street" in file_format.columns)
        out.malformed = malformed
        return out.to_bytes()


# --- collation -----------------------------------------------------------------------------------


def common_name_points(n_last: int, n_first: int, donors: int) -> float:
    """Penalty for a name that other donors may share by chance: of the other ``n_last`` − 1 donors
    with the surname, a share (``n_first`` − 1)/(``donors`` − 1) is expected to have the first name too."""
    if donors <= 1 or n_last <= 1 or n_first <= 1:
        return 0.0
    expected = (n_last - 1) * (n_first - 1) / (donors - 1)
    return min(c.COMMON_NAME_MAX_POINTS, c.COMMON_NAME_POINTS_PER_BIT * math.log2(1.0 + expected))


@dataclass
class Collated:
    """A run's outcome: its flags (sorted), its malformed rows, counts, and what reviewers cleared."""

    flags: list[Flag]
    malformed: list[MalformedRow]
    rows: int
    donors: int
    cleared: int


RULE_ORDER = {r: i for i, r in enumerate(c.RULES)}


def collate(outputs: Sequence[bytes], decisions: Sequence[Decision], options: dict[str, Any]) -> Collated:
    """Merge the chunks' outputs into the run's flags (see the module docstring)."""
    with _no_gc():
        return _collate(outputs, decisions, options)


def _collate(outputs: Sequence[bytes], decisions: Sequence[Decision], options: dict[str, Any]) -> Collated:
    opts = VetOptions.coerce(options)
    flags: list[Flag] = []
    candidates: list[dict[str, Any]] = []
    ledgers: list[Ledger] = []
    donors: dict[str, list[str]] = {}
    malformed: list[MalformedRow] = []
    rows = 0
    for data in outputs:
        chunk = ChunkOutput.from_bytes(data)
        rows += chunk.rows
        flags += chunk.flags
        candidates += chunk.candidates
        ledgers.append(chunk.ledger)
        for k, v in chunk.donors.items():
            donors.setdefault(k, v)
        malformed += chunk.malformed
    ledger = Ledger.concat(ledgers)
    n_last = Counter(v[1] for v in donors.values() if v[1])
    n_first = Counter(v[2] for v in donors.values() if v[2])
    people = sum(1 for v in donors.values() if v[1])
    for cand in candidates:
        f = cand["flag"]
        nl, nf = n_last.get(cand["last"], 0), n_first.get(cand["first"], 0)
        penalty = common_name_points(nl, nf, people)
        score = round(min(1.0, float(cand["raw"]) - penalty), 4)
        if score < opts.match_threshold:
            continue
        reason = str(f["reason"])
        if penalty >= 0.005:
            expected = (nl - 1) * (nf - 1) / max(1, people - 1)
            reason += f"; common name (about {expected:.1f} namesakes expected among {people:,} donors)"
        flags.append(Flag.from_dict({**f, "score": score, "reason": reason}))
    flags += aggregate_flags(ledger, {k: v[0] for k, v in donors.items()}, opts)
    cleared_pairs = {(d.donor_key, d.subject_key) for d in decisions if d.status == "cleared"}
    kept = [f for f in flags if (f.donor_key, f.subject_key) not in cleared_pairs]
    kept.sort(key=lambda f: (RULE_ORDER.get(f.rule, 99), -f.score, f.line))
    malformed.sort(key=lambda m: (m.source, m.line))
    return Collated(kept, malformed, rows, len(donors), len(flags) - len(kept))


@dataclass
class RunReport:
    """A run's outputs, ready to store and send: the summary (also the job's result), the flagged CSV
    and JSON, the malformed-rows CSV, and the e-mail's subject and body."""

    summary: dict[str, Any]
    csv: bytes
    json: bytes
    malformed_csv: bytes
    subject: str
    body: str


def build_report(
    outputs: Sequence[bytes],
    decisions: Sequence[Decision],
    options: dict[str, Any],
    base: dict[str, Any],
    extra_malformed: Sequence[MalformedRow] = (),
) -> RunReport:
    """``collate`` the chunks and write everything a run hands over (``base``: the summary's fields
    that the run knows: run id, source, lists, outputs)."""
    with _no_gc():
        result = collate(outputs, decisions, options)
        malformed = [*extra_malformed, *result.malformed]
        by_rule, by_list = report.counts(result.flags)
        summary: dict[str, Any] = {
            **base,
            "contributions": result.rows,
            "donors": result.donors,
            "flags": len(result.flags),
            "by_rule": by_rule,
            "by_list": by_list,
            "cleared": result.cleared,
            "malformed": len(malformed),
            "malformed_rows": [str(m) for m in malformed[: c.MALFORMED_IN_RESULT]],
        }
        subject, body = report.summary_text(summary, result.flags, malformed)
        return RunReport(
            summary=summary,
            csv=report.flags_csv(result.flags),
            json=report.flags_json(result.flags, summary),
            malformed_csv=report.malformed_csv(malformed),
            subject=subject,
            body=body,
        )


# --- where the CPU work runs -------------------------------------------------------------------------

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def cpu_executor(processes: int | None) -> Executor | None:
    """The process pool of this process (created on first use; ``processes`` None: one per core;
    0: no pool, CPU work runs in a thread)."""
    global _POOL, _POOL_SIZE
    if processes == 0:
        return None
    size = processes or os.cpu_count() or 1
    with _POOL_LOCK:
        if _POOL is None or size != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=False, cancel_futures=False)
            # spawn: a fork of a process running an event loop and threads is not safe
            _POOL = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("spawn"))
            _POOL_SIZE = size
        return _POOL


def shutdown_executor() -> None:
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


async def run_cpu(processes: int | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` off the event loop: in the process pool, or in a thread when ``processes`` is 0."""
    executor = cpu_executor(processes)
    if executor is None:
        return await asyncio.to_thread(fn, *args)
    return await asyncio.get_running_loop().run_in_executor(executor, partial(fn, *args))


__all__ = [
    "ChunkOutput",
    "Collated",
    "RunReport",
    "build_report",
    "collate",
    "common_name_points",
    "compile_watchlist_part",
    "compile_watchlists",
    "cpu_executor",
    "donor_key",
    "index_from_json",
    "join_compiled",
    "load_index",
    "run_cpu",
    "shutdown_executor",
    "vet_chunk",
    "vet_rows",
]
