"""Watchlists: CSV or JSON (an array, ``{"entries": [...]}`` or JSON lines) of people, organisations and
keywords, e.g. Senate LDA lobbyists, FARA registrants and foreign principals, a campaign's own block
list of companies and executives, a list of industries it refuses money from.

Each entry has a ``name`` (or ``first_name`` + ``last_name``) and optionally ``type`` (person,
organization or keyword; the list's default otherwise), ``employer``, ``city``, ``state``,
``occupation``, ``list``, ``reason``, ``source_url`` and ``id``. Entries without a usable name are
reported with their line (CSV, JSON lines) or position (JSON array) and skipped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .contributions import decode
from .errors import FormatError
from .names import fold, normalise_org, normalise_text, parse_person_name
from .records import ENTRY_KINDS, MalformedRow, WatchEntry

KIND_ALIASES = {
    "person": "person", "individual": "person", "ind": "person", "people": "person", "lobbyist": "person",
    "organization": "organization", "organisation": "organization", "org": "organization",
    "company": "organization", "corporation": "organization", "employer": "organization", "entity": "organization",
    "foreign principal": "organization", "keyword": "keyword", "industry": "keyword", "term": "keyword",
}  # fmt: skip
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "lobbyist_name", "registrant_name", "principal_name", "entity_name", "company"),
    "first_name": ("first_name", "first", "given_name"),
    "last_name": ("last_name", "last", "surname", "family_name"),
    "type": ("type", "kind", "entity_type", "category"),
    "employer": ("employer", "firm", "registrant", "organization", "organisation"),
    "city": ("city",),
    "state": ("state", "state_code"),
    "occupation": ("occupation", "title", "position"),
    "list": ("list", "list_name"),
    "reason": ("reason", "note", "notes", "description"),
    "source_url": ("source_url", "url", "source", "link"),
    "id": ("id", "entry_id", "registration_number", "registrant_id"),
}


@dataclass(frozen=True)
class WatchlistSpec:
    """One watchlist to load.

    Attributes:
        source: path, http(s) URL, s3://bucket/key or blob:key.
        name: the list's name in flags (default: the file's stem).
        format: auto (by content), csv or json.
        kind: the type of entries that do not say (person, organization or keyword).
        columns: field → column header, for CSVs whose headers are not the usual ones.
    """

    source: str
    name: str = ""
    format: str = "auto"
    kind: str = "person"
    columns: tuple[tuple[str, str], ...] = ()

    @property
    def list_name(self) -> str:
        if self.name:
            return self.name
        stem = self.source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0].removeprefix("blob:")
        return stem.rsplit(".", 1)[0] or "watchlist"


def _records(data: bytes, spec: WatchlistSpec) -> Iterator[tuple[int, str, Mapping[str, Any]]]:
    """(line or position, where, record) for each record of the file."""
    text = decode(data)
    fmt = spec.format
    stripped = text.lstrip()
    if fmt == "auto":
        fmt = "json" if stripped.startswith(("[", "{")) else "csv"
    if fmt == "json":
        try:
            doc: Any = json.loads(text)
        except json.JSONDecodeError:
            doc = None
        if doc is None:  # JSON lines
            for no, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as e:
                    yield no, "line", {"__error__": f"not JSON: {e.msg}"}
                    continue
                yield no, "line", item if isinstance(item, dict) else {"__error__": "not a JSON object"}
            return
        items = doc.get("entries") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            raise FormatError(f"watchlist {spec.source}: expected a JSON array or {{'entries': [...]}}")
        for pos, item in enumerate(items, 1):
            yield pos, "entry", item if isinstance(item, dict) else {"__error__": "not a JSON object"}
        return
    if fmt != "csv":
        raise FormatError(f"unknown watchlist format {spec.format!r}: use auto, csv or json")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        raise FormatError(f"watchlist {spec.source}: unreadable header: {e}") from e
    keys = [h.strip().lstrip("\ufeff").lower().replace(" ", "_") for h in header]
    seen = reader.line_num
    while True:
        no = seen + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            seen = reader.line_num
            yield no, "line", {"__error__": f"unreadable CSV row: {e}"}
            continue
        seen = reader.line_num
        if not any(x.strip() for x in row):
            continue
        if len(row) != len(keys):
            yield no, "line", {"__error__": f"expected {len(keys)} columns, found {len(row)}"}
            continue
        yield no, "line", dict(zip(keys, row, strict=True))


def _norm_key(k: str) -> str:
    return k.strip().lstrip("\ufeff").lower().replace(" ", "_")


def _resolve(keys: tuple[str, ...], explicit: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Field → the record keys that may hold it, in order of preference."""
    by_norm = {_norm_key(k): k for k in keys}
    out: dict[str, tuple[str, ...]] = {}
    for fld, aliases in COLUMN_ALIASES.items():
        if fld in explicit:
            k = by_norm.get(_norm_key(explicit[fld]))
            out[fld] = (k,) if k is not None else ()
        else:
            out[fld] = tuple(by_norm[a] for a in aliases if a in by_norm)
    return out


def _field(rec: Mapping[str, Any], keys: dict[str, tuple[str, ...]], fld: str) -> str:
    for k in keys[fld]:
        v = rec.get(k)
        if v not in (None, ""):
            return str(v).strip()
    return ""


def split_watchlist(
    data: bytes, spec: WatchlistSpec, parts: int, *, min_bytes: int = 1_000_000
) -> list[tuple[bytes, int]]:
    """A large CSV watchlist in about ``parts`` pieces, each with the header, at row boundaries (outside
    quotes), with the number of lines before each piece's first row; any other file whole."""
    is_json = spec.format == "json" or (spec.format == "auto" and data.lstrip()[:1] in (b"[", b"{"))
    if parts <= 1 or is_json or len(data) < min_bytes:
        return [(data, 0)]
    end = data.find(b"\n")
    if end < 0 or data.count(b'"', 0, end) % 2:
        return [(data, 0)]
    header = data[: end + 1]
    pieces: list[tuple[bytes, int]] = []
    pos, lines_before, step = end + 1, 1, max(1, (len(data) - end) // parts)
    while pos < len(data):
        cut = len(data) if pos + step >= len(data) else data.find(b"\n", pos + step) + 1 or len(data)
        while cut < len(data) and data.count(b'"', pos, cut) % 2:
            cut = data.find(b"\n", cut) + 1 or len(data)
        pieces.append((header + data[pos:cut], lines_before - 1))
        lines_before += data.count(b"\n", pos, cut)
        pos = cut
    return pieces


def parse_watchlist(
    data: bytes, spec: WatchlistSpec, *, line_offset: int = 0
) -> tuple[list[WatchEntry], list[MalformedRow]]:
    """The entries of one watchlist file (or piece of one, whose lines start after ``line_offset``
    lines of the file), and its malformed records."""
    if spec.kind not in ENTRY_KINDS:
        raise FormatError(f"watchlist {spec.source}: unknown entry type {spec.kind!r}; use {', '.join(ENTRY_KINDS)}")
    explicit = dict(spec.columns)
    entries: list[WatchEntry] = []
    bad: list[MalformedRow] = []
    seen_keys: set[str] = set()
    resolved: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
    for no_in_piece, where, rec in _records(data, spec):
        no = no_in_piece + line_offset
        if "__error__" in rec:
            bad.append(MalformedRow(spec.source, no, str(rec["__error__"])))
            continue
        shape = tuple(rec)
        keys = resolved.get(shape)
        if keys is None:
            keys = resolved[shape] = _resolve(shape, explicit)
        try:
            entry = make_entry(rec, spec, no, keys)
        except FormatError as e:
            bad.append(MalformedRow(spec.source, no, f"{where} {no}: {e}" if where == "entry" else str(e)))
            continue
        key = entry.subject_key
        if key in seen_keys:  # the same entry twice in one list: keep the first
            continue
        seen_keys.add(key)
        entries.append(entry)
    return entries, bad


def make_entry(
    rec: Mapping[str, Any], spec: WatchlistSpec, no: int, keys: dict[str, tuple[str, ...]] | None = None
) -> WatchEntry:
    """One normalised entry from a record; FormatError when it has no usable name or type."""
    keys = keys if keys is not None else _resolve(tuple(rec), dict(spec.columns))

    def get(fld: str) -> str:
        return _field(rec, keys, fld)

    name = get("name")
    if not name:
        last, first = get("last_name"), get("first_name")
        name = f"{first} {last}".strip() if last else ""
    if not name:
        raise FormatError("no name")
    raw_kind = get("type").lower()
    kind = KIND_ALIASES.get(raw_kind, "") if raw_kind else spec.kind
    if not kind:
        raise FormatError(f"unknown entry type {raw_kind!r} (person, organization or keyword)")
    employer, city, occupation = get("employer"), get("city"), get("occupation")
    common: dict[str, Any] = {
        "list": get("list") or spec.list_name,
        "kind": kind,
        "name": name,
        "line": no,
        "employer": employer,
        "city": city,
        "state": get("state").upper(),
        "occupation": occupation,
        "reason": get("reason"),
        "source_url": get("source_url"),
        "employer_norm": normalise_org(employer),
        "city_norm": normalise_text(city),
        "occupation_norm": normalise_text(occupation),
    }
    given_id = get("id")
    if kind == "person":
        p = parse_person_name(name)
        if p is None:
            raise FormatError(f"no usable person name in {name!r}")
        key = given_id or "|".join(x for x in (p.display(), common["employer_norm"]) if x)
        return WatchEntry(**common, key=key, last=p.last, first=p.first, middles=p.middles, last_keys=p.last_keys)
    org = normalise_org(name) if kind == "organization" else fold(name)
    if not org:
        raise FormatError(f"no usable {kind} name in {name!r}")
    return WatchEntry(**common, key=given_id or org, org=org)


__all__ = ["COLUMN_ALIASES", "KIND_ALIASES", "WatchlistSpec", "make_entry", "parse_watchlist", "split_watchlist"]
