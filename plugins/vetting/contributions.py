"""Contributions files: the FEC bulk format and CSV with a column mapping, split into chunks and read
into ``Contribution`` rows.

- FEC ``itcont.txt``: pipe-delimited, no header, 21 columns (``constants.FEC_COLUMNS``), dates
  MMDDYYYY, NAME as "LAST, FIRST MIDDLE".
- CSV with a header. Columns are found by common names (``name``/``contributor_name``,
  ``first_name`` + ``last_name``, ``amount``, ``date`` …) or given explicitly as a mapping
  ``{field: column header}`` for other exports (a CRM's). ``name`` (or ``last_name``) and
  ``amount`` are required.

A file is split into chunks at line boundaries (for CSV, only where no quoted field is open), each
carrying the line number it starts at, so every malformed row is reported with its line in the
original file.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .constants import FEC_COLUMNS, MEMO_CODE
from .errors import FormatError
from .records import Contribution, MalformedRow

FIELDS = (
    "id", "donor_id", "name", "first_name", "middle_name", "last_name", "entity_type", "street", "city", "state",
    "zip", "country", "employer", "occupation", "date", "amount", "memo", "transaction_type", "committee",
    "election",
)  # fmt: skip
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "contribution_id", "transaction_id", "sub_id", "tran_id", "receipt_id"),
    "donor_id": ("donor_id", "contributor_id", "constituent_id", "person_id"),
    "name": ("name", "contributor_name", "donor_name", "full_name", "contributor"),
    "first_name": ("first_name", "first", "given_name", "contributor_first_name", "firstname"),
    "middle_name": ("middle_name", "middle", "contributor_middle_name"),
    "last_name": ("last_name", "last", "surname", "family_name", "contributor_last_name", "lastname"),
    "entity_type": ("entity_type", "entity_tp", "contributor_type"),
    "street": ("street", "address", "address1", "street_address", "address_line_1", "contributor_street_1"),
    "city": ("city", "contributor_city"),
    "state": ("state", "contributor_state", "state_code"),
    "zip": ("zip", "zip_code", "postal_code", "zipcode", "contributor_zip"),
    "country": ("country", "contributor_country", "country_code"),
    "employer": ("employer", "contributor_employer"),
    "occupation": ("occupation", "contributor_occupation"),
    "date": ("date", "contribution_date", "transaction_date", "receipt_date", "transaction_dt"),
    "amount": ("amount", "contribution_amount", "transaction_amount", "transaction_amt", "amount_usd"),
    "memo": ("memo", "memo_cd", "memo_code"),
    "transaction_type": ("transaction_type", "transaction_tp"),
    "committee": ("committee", "committee_id", "cmte_id", "recipient"),
    "election": ("election", "election_code", "transaction_pgi"),
}


@dataclass(frozen=True)
class FileFormat:
    """How to read a contributions file.

    Attributes:
        kind: ``fec`` or ``csv``.
        delimiter: the CSV delimiter.
        header: the CSV's column headers ("" for FEC).
        columns: field → column index (CSV).
        data_offset: byte offset of the first data row.
        data_line: line number of the first data row.
    """

    kind: str
    delimiter: str = ","
    header: tuple[str, ...] = ()
    columns: dict[str, int] = field(default_factory=dict)
    data_offset: int = 0
    data_line: int = 1

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "delimiter": self.delimiter, "header": list(self.header), "columns": self.columns,
            "data_offset": self.data_offset, "data_line": self.data_line,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> FileFormat:
        header = d.get("header") or []
        columns = d.get("columns") or {}
        assert isinstance(header, list) and isinstance(columns, dict)
        return cls(
            kind=str(d["kind"]), delimiter=str(d.get("delimiter", ",")), header=tuple(map(str, header)),
            columns={str(k): int(v) for k, v in columns.items()},
            data_offset=int(str(d.get("data_offset", 0))), data_line=int(str(d.get("data_line", 1))),
        )  # fmt: skip


def decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), else Latin-1 (older FEC files), which never fails."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _norm_header(h: str) -> str:
    return "_".join(h.strip().lstrip("\ufeff").lower().replace("-", " ").split())


def detect_format(
    data: bytes, *, kind: str = "auto", columns: Mapping[str, str] | None = None, delimiter: str | None = None
) -> FileFormat:
    """The file's format from its first line (``kind`` auto, fec or csv) and the column mapping."""
    if kind not in ("auto", "fec", "csv"):
        raise FormatError(f"unknown contributions format {kind!r}: use auto, fec or csv")
    end = data.find(b"\n")
    first = decode(data[: end if end >= 0 else len(data)]).rstrip("\r")
    if kind == "auto":
        kind = "fec" if first.count("|") == len(FEC_COLUMNS) - 1 else "csv"
    if kind == "fec":
        if columns:
            raise FormatError("a column mapping applies to CSV input, not to the FEC format")
        return FileFormat("fec", delimiter="|")
    if not first.strip():
        raise FormatError("the CSV file has no header line")
    if delimiter is None:
        delimiter = max((",", ";", "\t", "|"), key=first.count)
    header = tuple(next(csv.reader([first], delimiter=delimiter)))
    return FileFormat(
        "csv", delimiter=delimiter, header=header, columns=map_columns(header, columns),
        data_offset=end + 1 if end >= 0 else len(data), data_line=2,
    )  # fmt: skip


def map_columns(header: tuple[str, ...], mapping: Mapping[str, str] | None = None) -> dict[str, int]:
    """Field → column index: the explicit ``mapping`` (field → header) first, then known aliases."""
    normalised = {_norm_header(h): i for i, h in enumerate(header)}
    out: dict[str, int] = {}
    for fld, col in (mapping or {}).items():
        if fld not in FIELDS:
            raise FormatError(f"unknown field {fld!r} in the column mapping; fields: {', '.join(FIELDS)}")
        i = normalised.get(_norm_header(col))
        if i is None:
            raise FormatError(f"column {col!r} (for {fld}) is not in the header: {', '.join(header)}")
        out[fld] = i
    for fld, names in ALIASES.items():
        if fld not in out:
            for n in names:
                if n in normalised and normalised[n] not in out.values():
                    out[fld] = normalised[n]
                    break
    if "name" not in out and "last_name" not in out:
        raise FormatError(f"no contributor name column (name, or last_name) in the header: {', '.join(header)}")
    if "amount" not in out:
        raise FormatError(f"no amount column in the header: {', '.join(header)}")
    return out


@dataclass(frozen=True, slots=True)
class Chunk:
    """A byte range of the file holding whole rows; ``line`` is the line number of its first row."""

    start: int
    end: int
    line: int
    rows: int


def split_chunks(data: bytes, fmt: FileFormat, chunk_rows: int) -> list[Chunk]:
    """Split the data rows into chunks of about ``chunk_rows`` lines, at row boundaries."""
    if chunk_rows < 1:
        raise FormatError("chunk_rows must be at least 1")
    chunks: list[Chunk] = []
    pos, line, n = fmt.data_offset, fmt.data_line, len(data)
    sample = data[pos : pos + 1_000_000]
    avg = max(1.0, len(sample) / max(1, sample.count(b"\n")))
    step = max(1, int(chunk_rows * avg))
    while pos < n:
        end = n if pos + step >= n else _next_line(data, pos + step)
        if fmt.kind == "csv":
            while end < n and data.count(b'"', pos, end) % 2:
                end = _next_line(data, end)  # inside a quoted field: the row goes on
        lines = data.count(b"\n", pos, end)
        rows = lines + (1 if end == n and not data.endswith(b"\n") else 0)
        chunks.append(Chunk(pos, end, line, rows))
        line += lines
        pos = end
    return chunks


def _next_line(data: bytes, pos: int) -> int:
    i = data.find(b"\n", pos)
    return len(data) if i < 0 else i + 1


def parse_date(s: str) -> int:
    """YYYYMMDD from MMDDYYYY (FEC), YYYYMMDD, YYYY-MM-DD[…] or M/D/YYYY; 0 for ""; ValueError else."""
    s = s.strip()
    if not s:
        return 0
    if len(s) >= 10 and s[4] == "-" and s[7] == "-":
        y, m, d = int(s[:4]), int(s[5:7]), int(s[8:10])
    elif "/" in s:
        parts = s.split("/")
        if len(parts) != 3:
            raise ValueError(f"bad date {s!r}")
        m, d, y = int(parts[0]), int(parts[1]), int(parts[2][:4])
    elif len(s) == 8 and s.isdigit():
        if 1 <= int(s[:2]) <= 12:
            m, d, y = int(s[:2]), int(s[2:4]), int(s[4:])
        else:
            y, m, d = int(s[:4]), int(s[4:6]), int(s[6:])
    else:
        raise ValueError(f"bad date {s!r}")
    if not 1900 <= y <= 2200:
        raise ValueError(f"bad date {s!r}")
    datetime.date(y, m, d)  # ValueError for 02/31 and the like
    return y * 10000 + m * 100 + d


def parse_amount(s: str) -> float:
    """Dollars from "1,250.00", "$50", "(25.00)" (negative); ValueError for anything else."""
    t = s.strip().replace(",", "").replace("$", "")
    neg = t.startswith("(") and t.endswith(")")
    if neg:
        t = t[1:-1]
    if not t:
        raise ValueError("no amount")
    v = float(t)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"bad amount {s!r}")
    return -v if neg else v


def read_rows(text: str, fmt: FileFormat, *, start_line: int, source: str) -> Iterator[Contribution | MalformedRow]:
    """The rows of one chunk, in order: a ``Contribution`` per good row, a ``MalformedRow`` per bad one.
    Blank lines are not rows."""
    if fmt.kind == "fec":
        yield from _read_fec(text, start_line, source)
    else:
        yield from _read_csv(text, fmt, start_line, source)


def _read_fec(text: str, start_line: int, source: str) -> Iterator[Contribution | MalformedRow]:
    n_cols = len(FEC_COLUMNS)
    dates: dict[str, int] = {}  # dates and amounts repeat a lot: parse each spelling once
    amounts: dict[str, float] = {}
    for offset, raw in enumerate(text.split("\n")):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        no = start_line + offset
        f = line.split("|")
        if len(f) != n_cols:
            yield MalformedRow(source, no, f"expected {n_cols} pipe-separated fields, found {len(f)}")
            continue
        amount = amounts.get(f[14])
        if amount is None:
            try:
                amount = amounts[f[14]] = parse_amount(f[14])
            except ValueError:
                yield MalformedRow(source, no, f"TRANSACTION_AMT is not a number: {f[14]!r}")
                continue
        date = dates.get(f[13])
        if date is None:
            try:
                date = dates[f[13]] = parse_date(f[13])
            except ValueError:
                yield MalformedRow(source, no, f"TRANSACTION_DT is not a date (MMDDYYYY): {f[13]!r}")
                continue
        yield Contribution(
            f[20].strip() or str(no), no, f[7].strip(), f[6].strip().upper(), "", f[8].strip(),
            f[9].strip().upper(), f[10].strip(), "", f[11].strip(), f[12].strip(), date, amount,
            f[18].strip().upper() == MEMO_CODE, f[5].strip().upper(), f[0].strip(), f[3].strip().upper(),
        )  # fmt: skip


def _read_csv(text: str, fmt: FileFormat, start_line: int, source: str) -> Iterator[Contribution | MalformedRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    cols = fmt.columns
    width = len(fmt.header)
    seen = 0  # physical lines consumed so far
    while True:
        row_line = start_line + seen
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            seen = reader.line_num
            yield MalformedRow(source, row_line, f"unreadable CSV row: {e}")
            continue
        seen = reader.line_num
        if not row or not any(x.strip() for x in row):
            continue
        if len(row) != width:
            yield MalformedRow(source, row_line, f"expected {width} columns, found {len(row)}")
            continue

        def get(fld: str, row: list[str] = row) -> str:
            i = cols.get(fld)
            return row[i].strip() if i is not None else ""

        try:
            amount = parse_amount(get("amount"))
        except ValueError:
            yield MalformedRow(source, row_line, f"amount is not a number: {get('amount')!r}")
            continue
        try:
            date = parse_date(get("date"))
        except ValueError:
            yield MalformedRow(source, row_line, f"date is not a date: {get('date')!r}")
            continue
        name = get("name")
        if not name and "last_name" in cols:
            given = " ".join(x for x in (get("first_name"), get("middle_name")) if x)
            name = f"{get('last_name')}, {given}" if given else get("last_name")
        memo = get("memo").upper()
        yield Contribution(
            id=get("id") or str(row_line), line=row_line, name=name, entity_type=get("entity_type").upper(),
            street=get("street"), city=get("city"), state=get("state").upper(), zip=get("zip"),
            country=get("country"), employer=get("employer"), occupation=get("occupation"), date=date,
            amount_usd=amount, memo=memo in (MEMO_CODE, "Y", "YES", "TRUE", "1"),
            transaction_type=get("transaction_type").upper(), committee=get("committee"),
            election=get("election").upper(), donor_id=get("donor_id"),
        )  # fmt: skip


__all__ = [
    "ALIASES",
    "FIELDS",
    "Chunk",
    "FileFormat",
    "decode",
    "detect_format",
    "map_columns",
    "parse_amount",
    "parse_date",
    "read_rows",
    "split_chunks",
]
