"""Records of the vetting plugin: contributions, watchlist entries, flags, malformed rows, reviewer
decisions. Each has a JSON form (``to_dict`` / ``from_dict``); that is the only serializer."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import FormatError

ENTRY_KINDS = ("person", "organization", "keyword")


@dataclass(slots=True)
class Contribution:
    """One contribution row, whatever the input format.

    Attributes:
        id: SUB_ID (FEC), the id column (CSV) or the line number.
        line: 1-based line of the row in its source file.
        name: the contributor as written.
        entity_type: FEC ENTITY_TP (IND, ORG, PAC, …); "" when the input has none (individuals).
        date: YYYYMMDD as an int, 0 when absent.
        amount_usd: as reported (negative for some refunds and redesignations).
        memo: MEMO_CD is "X": listed for information, not counted in totals.
        election: FEC TRANSACTION_PGI (P2024, G2024, …), or the CSV's election column.
        donor_id: the CSV's donor id column, when it has one.
    """

    id: str
    line: int
    name: str
    entity_type: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    employer: str = ""
    occupation: str = ""
    date: int = 0
    amount_usd: float = 0.0
    memo: bool = False
    transaction_type: str = ""
    committee: str = ""
    election: str = ""
    donor_id: str = ""


@dataclass(frozen=True, slots=True)
class MalformedRow:
    """A row that could not be read, skipped and reported."""

    source: str
    line: int
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "error": self.error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MalformedRow:
        return cls(str(d["source"]), int(d["line"]), str(d["error"]))

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.error}"


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """A watchlist entry, as loaded and normalised.

    Attributes:
        list: the list's name (``fara``, ``lda``, ``blocklist`` …).
        kind: ``person`` (matched against contributor names), ``organization`` (against employers and
            organisation contributors) or ``keyword`` (an industry word or phrase in the employer or
            occupation).
        name: as written in the list.
        key: stable identity of the entry inside its list (its id column, else its normalised name).
        last, first, middles, last_keys: the parsed person name (persons only).
        org: normalised organisation name or keyword phrase (organisations and keywords).
        employer_norm, city_norm: normalised evidence fields.
    """

    list: str
    kind: str
    name: str
    key: str
    line: int = 0
    employer: str = ""
    city: str = ""
    state: str = ""
    occupation: str = ""
    reason: str = ""
    source_url: str = ""
    last: str = ""
    first: str = ""
    middles: tuple[str, ...] = ()
    last_keys: tuple[str, ...] = ()
    org: str = ""
    employer_norm: str = ""
    city_norm: str = ""
    occupation_norm: str = ""

    @property
    def subject_key(self) -> str:
        """What a reviewer decision names: ``<list>:<key>``."""
        return f"{self.list}:{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(WATCH_ENTRY_FIELDS, self.to_row(), strict=True))

    def to_row(self) -> builtins.list[Any]:
        """The fields in ``WATCH_ENTRY_FIELDS`` order (the compiled watchlist's compact form)."""
        return [
            self.list, self.kind, self.name, self.key, self.line, self.employer, self.city, self.state,
            self.occupation, self.reason, self.source_url, self.last, self.first, list(self.middles),
            list(self.last_keys), self.org, self.employer_norm, self.city_norm, self.occupation_norm,
        ]  # fmt: skip

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> WatchEntry:
        try:
            values = list(row)
            values[_MIDDLES], values[_LAST_KEYS] = tuple(values[_MIDDLES]), tuple(values[_LAST_KEYS])
            return cls(*values)
        except (TypeError, IndexError) as e:
            raise FormatError(f"bad compiled watchlist entry: {e}") from e

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WatchEntry:
        return cls.from_row([d.get(f, _ENTRY_DEFAULTS.get(f)) for f in WATCH_ENTRY_FIELDS])


WATCH_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(WatchEntry))
_MIDDLES = WATCH_ENTRY_FIELDS.index("middles")
_LAST_KEYS = WATCH_ENTRY_FIELDS.index("last_keys")
_ENTRY_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(WatchEntry) if f.default is not dataclasses.MISSING
}

FLAG_COLUMNS = (
    "contribution_id", "line", "rule", "list", "matched_name", "score", "reason", "donor_name", "donor_key",
    "subject_key", "amount_usd", "date", "committee", "employer", "city", "state",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Flag:
    """One finding: a contribution, the rule that fired, its score and a one-line reason.

    Attributes:
        contribution_id: SUB_ID (FEC), the id column or the line number (CSV).
        rule: one of ``constants.RULES``.
        list: the watchlist that matched ("" for FEC rules).
        matched_name: the watchlist entry's name as written ("" for FEC rules).
        score: 0–1; 1.0 for FEC rules (they hold or they do not).
        donor_key: who gave (normalised name and ZIP, or the CSV's donor id).
        subject_key: what it is about: ``<list>:<entry key>`` or the rule's name. A reviewer decision
            clears one (donor_key, subject_key) pair in later runs.
    """

    contribution_id: str
    line: int
    rule: str
    list: str
    matched_name: str
    score: float
    reason: str
    donor_name: str
    donor_key: str
    subject_key: str
    amount_usd: float = 0.0
    date: int = 0
    committee: str = ""
    employer: str = ""
    city: str = ""
    state: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FLAG_COLUMNS}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Flag:
        try:
            return cls(**{k: d[k] for k in FLAG_COLUMNS})
        except (KeyError, TypeError) as e:
            raise FormatError(f"bad flag record: {e}") from e


@dataclass(frozen=True, slots=True)
class Decision:
    """A reviewer's decision on a (donor, subject) pair: ``cleared`` flags are not raised again.

    Attributes:
        reviewer: who decided, for people (a name or e-mail).
        reviewer_id: the deciding principal's id (its token, sign-in or ``oidc:<subject>``), when the
            decision came through the API ("" from the ``vetting.decide`` job).
    """

    donor_key: str
    subject_key: str
    status: str
    reason: str
    reviewer: str = ""
    decided_at: float = 0.0
    reviewer_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        try:
            return cls(
                str(d["donor_key"]), str(d["subject_key"]), str(d["status"]), str(d["reason"]),
                str(d.get("reviewer", "")), float(d.get("decided_at", 0.0)), str(d.get("reviewer_id", "")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"bad decision record: {e}") from e


__all__ = [
    "ENTRY_KINDS",
    "FLAG_COLUMNS",
    "WATCH_ENTRY_FIELDS",
    "Contribution",
    "Decision",
    "Flag",
    "MalformedRow",
    "WatchEntry",
]
