"""FEC rules.

Per row (memo entries excepted: they are listed for information, not received):

- ``organization_contribution``: a contributor with ENTITY_TP ORG (a corporation, union, …) gave to
  a candidate committee;
- ``foreign_address``: state ZZ (the FEC's code for abroad), a state that is not a US state or
  territory, or a country that is not the US;
- ``missing_fields``: no contributor name.

Per donor, across the whole file (``aggregate_flags``), for individuals only, per recipient committee
and election (TRANSACTION_PGI, or the year when there is none), in date order, memo entries
(MEMO_CD X) excluded and refunds (negative amounts, transaction types 22Y/22Z/22R) subtracted:

- ``over_limit``: the net aggregate exceeds the per-election limit; flagged on the contribution that
  took it over the limit for the last time (earlier excess that was refunded does not count);
- ``missing_fields``: a contribution made once the aggregate exceeds the itemisation threshold
  lacks its address (city, state, ZIP; street too when the input has a street column), employer
  or occupation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .constants import (
    LIMITED_ENTITY_TYPES,
    ORGANIZATION_ENTITY_TYPES,
    REFUND_TRANSACTION_TYPES,
    RULE_FOREIGN_ADDRESS,
    RULE_MISSING_FIELDS,
    RULE_ORGANIZATION_CONTRIBUTION,
    RULE_OVER_LIMIT,
)
from .names import fold
from .names_data import MISSING_VALUES, US_COUNTRY_NAMES, US_STATES
from .options import VetOptions
from .records import Contribution, Flag

MISSING_STREET = 1
MISSING_CITY = 2
MISSING_STATE = 4
MISSING_ZIP = 8
MISSING_EMPLOYER = 16
MISSING_OCCUPATION = 32
_MISSING_NAMES = (
    (MISSING_STREET, "street"), (MISSING_CITY, "city"), (MISSING_STATE, "state"), (MISSING_ZIP, "ZIP"),
    (MISSING_EMPLOYER, "employer"), (MISSING_OCCUPATION, "occupation"),
)  # fmt: skip


@lru_cache(maxsize=1 << 16)
def is_missing(value: str) -> bool:
    return fold(value) in MISSING_VALUES


def missing_bits(row: Contribution, *, has_street: bool) -> int:
    bits = 0
    if has_street and is_missing(row.street):
        bits |= MISSING_STREET
    if is_missing(row.city):
        bits |= MISSING_CITY
    if is_missing(row.state):
        bits |= MISSING_STATE
    if is_missing(row.zip):
        bits |= MISSING_ZIP
    if is_missing(row.employer):
        bits |= MISSING_EMPLOYER
    if is_missing(row.occupation):
        bits |= MISSING_OCCUPATION
    return bits


def describe_missing(bits: int) -> str:
    return ", ".join(name for bit, name in _MISSING_NAMES if bits & bit)


def counted_amount(row: Contribution) -> float:
    """What the row adds to the donor's aggregate: 0 for a memo, minus the refund for a refund."""
    if row.memo:
        return 0.0
    if row.transaction_type in REFUND_TRANSACTION_TYPES:
        return -abs(row.amount_usd)
    return row.amount_usd


def election_of(row: Contribution) -> str:
    return row.election or (f"Y{row.date // 10000}" if row.date else "")


def usd(v: float) -> str:
    return f"-${-v:,.2f}" if v < 0 else f"${v:,.2f}"


def fmt_date(d: int) -> str:
    return f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" if d else ""


def row_flags(row: Contribution, *, donor_key: str, has_name: bool, options: VetOptions) -> list[Flag]:
    """The per-row FEC rules for one (non-memo) contribution."""
    if row.memo:
        return []
    out: list[Flag] = []

    def flag(rule: str, reason: str) -> None:
        out.append(
            Flag(
                contribution_id=row.id,
                line=row.line,
                rule=rule,
                list="",
                matched_name="",
                score=1.0,
                reason=reason,
                donor_name=row.name,
                donor_key=donor_key,
                subject_key=rule,
                amount_usd=row.amount_usd,
                date=row.date,
                committee=row.committee,
                employer=row.employer,
                city=row.city,
                state=row.state,
            )
        )

    if (
        options.enabled(RULE_ORGANIZATION_CONTRIBUTION)
        and row.entity_type in ORGANIZATION_ENTITY_TYPES
        and options.is_candidate_committee(row.committee)
    ):
        flag(
            RULE_ORGANIZATION_CONTRIBUTION,
            f"an organisation (ENTITY_TP {row.entity_type}) gave {usd(row.amount_usd)} to candidate committee "
            f"{row.committee or '(unnamed)'}: corporations and unions may not contribute to candidates",
        )
    if options.enabled(RULE_FOREIGN_ADDRESS):
        country = fold(row.country)
        if row.state == "ZZ" or (row.state and row.state not in US_STATES) or country not in US_COUNTRY_NAMES:
            where = ", ".join(x for x in (row.city, row.state, row.country) if x)
            flag(RULE_FOREIGN_ADDRESS, f"foreign address ({where}): foreign nationals may not contribute")
    if options.enabled(RULE_MISSING_FIELDS) and not has_name:
        flag(RULE_MISSING_FIELDS, "no contributor name: anonymous contributions over $50 are prohibited")
    return out


def limited(row: Contribution) -> bool:
    """Counted in an individual's aggregate: an individual's (not a memo) contribution."""
    return not row.memo and row.entity_type in LIMITED_ENTITY_TYPES


SEP = "\x1f"  # between the parts of a group key (donor, committee, election)
RECORD_SEP = "\x1e"  # between the strings of a column when it is stored as one text

LedgerRow = tuple[str, int, str, str, str, float, float, int, int]


@dataclass
class Ledger:
    """The rows the per-donor rules need, column by column (one chunk's, or the whole file's).

    Attributes:
        groups: distinct ``donor␟committee␟election`` keys.
        group: per row, its index in ``groups``.
        ids, lines: the contribution's id and line.
        counted: what it adds to the aggregate (0 for memos, minus a refund); reported: its amount.
        dates: YYYYMMDD; missing: ``MISSING_*`` bits.
    """

    groups: list[str] = field(default_factory=list)
    group: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ids: list[str] = field(default_factory=list)
    lines: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counted: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    reported: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    dates: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    missing: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @staticmethod
    def row(row: Contribution, donor_key: str, missing: int) -> LedgerRow:
        """One row's entry, as ``from_rows`` takes it."""
        return (
            row.id, row.line, donor_key, row.committee, election_of(row), counted_amount(row), row.amount_usd,
            row.date, missing,
        )  # fmt: skip

    @classmethod
    def from_rows(cls, rows: Sequence[LedgerRow]) -> Ledger:
        if not rows:
            return cls()
        ids, lines, donors, committees, elections, counted, reported, dates, missing = zip(*rows, strict=True)
        index: dict[str, int] = {}
        group = np.fromiter(
            (index.setdefault(f"{d}{SEP}{c}{SEP}{e}", len(index)) for d, c, e in zip(donors, committees, elections,
                                                                                     strict=True)),
            dtype=np.int64, count=len(rows),
        )  # fmt: skip
        return cls(
            list(index), group, list(ids), np.asarray(lines, dtype=np.int64), np.asarray(counted, dtype=np.float64),
            np.asarray(reported, dtype=np.float64), np.asarray(dates, dtype=np.int64),
            np.asarray(missing, dtype=np.int64),
        )  # fmt: skip

    @classmethod
    def concat(cls, parts: Sequence[Ledger]) -> Ledger:
        """One ledger from several (the chunks'), their group keys merged."""
        index: dict[str, int] = {}
        groups = []
        for part in parts:
            remap = np.fromiter((index.setdefault(g, len(index)) for g in part.groups), dtype=np.int64,
                                count=len(part.groups))  # fmt: skip
            groups.append(remap[part.group] if part.group.size else part.group)
        return cls(
            list(index), np.concatenate([np.zeros(0, dtype=np.int64), *groups]),
            [i for part in parts for i in part.ids],
            np.concatenate([np.zeros(0, dtype=np.int64), *(p.lines for p in parts)]),
            np.concatenate([np.zeros(0, dtype=np.float64), *(p.counted for p in parts)]),
            np.concatenate([np.zeros(0, dtype=np.float64), *(p.reported for p in parts)]),
            np.concatenate([np.zeros(0, dtype=np.int64), *(p.dates for p in parts)]),
            np.concatenate([np.zeros(0, dtype=np.int64), *(p.missing for p in parts)]),
        )  # fmt: skip

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The ledger as numpy arrays (text columns as UTF-8 bytes), for ``numpy.savez``."""
        return {
            "groups": _text(self.groups), "group": self.group, "ids": _text(self.ids), "lines": self.lines,
            "counted": self.counted, "reported": self.reported, "dates": self.dates, "missing": self.missing,
        }  # fmt: skip

    @classmethod
    def from_arrays(cls, a: Mapping[str, NDArray[Any]]) -> Ledger:
        return cls(
            _untext(a["groups"]), a["group"].astype(np.int64), _untext(a["ids"]), a["lines"].astype(np.int64),
            a["counted"].astype(np.float64), a["reported"].astype(np.float64), a["dates"].astype(np.int64),
            a["missing"].astype(np.int64),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)


def _text(items: Sequence[str]) -> NDArray[np.uint8]:
    return np.frombuffer(RECORD_SEP.join(items).encode(), dtype=np.uint8)


def _untext(a: NDArray[Any]) -> list[str]:
    text = a.tobytes().decode()
    return text.split(RECORD_SEP) if text else []


def aggregate_flags(ledger: Ledger, names: Mapping[str, str], options: VetOptions) -> list[Flag]:
    """The per-donor rules over the whole ledger (see the module docstring)."""
    n = len(ledger)
    if not n:
        return []
    order = np.lexsort((ledger.lines, ledger.dates, ledger.group))
    g = ledger.group[order]
    amounts = ledger.counted[order]
    cum = np.cumsum(amounts)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, n])
    base = np.repeat(cum[starts] - amounts[starts], sizes)
    running = np.round(cum - base, 2)  # the donor's aggregate after each row, in date order
    totals = np.round(np.add.reduceat(amounts, starts), 2)
    group_total = np.repeat(totals, sizes)
    group_size = np.repeat(sizes, sizes)
    first = np.zeros(n, dtype=bool)
    first[starts] = True
    prev = np.where(first, 0.0, np.r_[0.0, running[:-1]])
    out: list[Flag] = []

    def flag(i: int, rule: str, reason: str) -> None:
        k = int(order[i])
        donor, committee, _ = ledger.groups[int(g[i])].split(SEP)
        out.append(
            Flag(
                contribution_id=ledger.ids[k],
                line=int(ledger.lines[k]),
                rule=rule,
                list="",
                matched_name="",
                score=1.0,
                reason=reason,
                donor_name=names.get(donor, ""),
                donor_key=donor,
                subject_key=rule,
                amount_usd=float(ledger.reported[k]),
                date=int(ledger.dates[k]),
                committee=committee,
            )
        )

    if options.enabled(RULE_OVER_LIMIT):
        limit = options.contribution_limit_usd
        crossing = (running > limit) & (prev <= limit) & (group_total > limit)
        last_crossing: dict[int, int] = {}
        for i in np.flatnonzero(crossing).tolist():
            last_crossing[int(g[i])] = i
        for gi, i in last_crossing.items():
            _, committee, election = ledger.groups[gi].split(SEP)
            when = fmt_date(int(ledger.dates[int(order[i])])) or "this contribution"
            flag(
                i,
                RULE_OVER_LIMIT,
                f"aggregate {usd(float(group_total[i]))} to {committee or 'the committee'} for election "
                f"{election or '(unknown)'} exceeds the {usd(limit)} limit ({int(group_size[i])} contributions, "
                f"memos excluded, refunds netted; over the limit from {when})",
            )
    if options.enabled(RULE_MISSING_FIELDS):
        threshold = options.itemization_threshold_usd
        missing = ledger.missing[order]
        for i in np.flatnonzero((missing != 0) & (running > threshold)).tolist():
            flag(
                i,
                RULE_MISSING_FIELDS,
                f"missing {describe_missing(int(missing[i]))} with an aggregate of {usd(float(running[i]))} "
                f"(over the {usd(threshold)} itemisation threshold)",
            )
    return out


__all__ = [
    "RECORD_SEP",
    "SEP",
    "Ledger",
    "LedgerRow",
    "aggregate_flags",
    "counted_amount",
    "describe_missing",
    "election_of",
    "fmt_date",
    "is_missing",
    "limited",
    "missing_bits",
    "row_flags",
    "usd",
]
