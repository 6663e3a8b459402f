"""Options of one vetting run: limits, thresholds and which rules apply."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import constants as c
from .errors import FormatError


@dataclass(frozen=True)
class VetOptions:
    """How contributions are vetted. Defaults come from ``constants``; the plugin's settings and a
    run's ``options`` parameter override them.

    Attributes:
        match_threshold: flag a name or organisation match scoring at least this (0–1).
        name_floor: a name pair must score this on the name alone to be weighed with evidence.
        org_threshold: employer / organisation similarity (0–1) to flag.
        contribution_limit_usd: per individual, per candidate committee, per election.
        itemization_threshold_usd: aggregate above which address, employer and occupation are required.
        candidate_committee_ids: recipients that are candidate committees (empty: every recipient is).
        disabled_rules: rules not applied (names from ``constants.RULES``).
    """

    match_threshold: float = c.MATCH_THRESHOLD
    name_floor: float = c.NAME_FLOOR
    org_threshold: float = c.ORG_THRESHOLD
    contribution_limit_usd: float = c.CONTRIBUTION_LIMIT_USD
    itemization_threshold_usd: float = c.ITEMIZATION_THRESHOLD_USD
    candidate_committee_ids: tuple[str, ...] = ()
    disabled_rules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("match_threshold", "name_floor", "org_threshold"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise FormatError(f"option {name} must be between 0 and 1, got {v}")
        if self.name_floor > self.match_threshold:
            raise FormatError("option name_floor must not exceed match_threshold")
        if self.contribution_limit_usd <= 0 or self.itemization_threshold_usd < 0:
            raise FormatError("contribution_limit_usd must be positive and itemization_threshold_usd not negative")
        unknown = set(self.disabled_rules) - set(c.RULES)
        if unknown:
            raise FormatError(f"unknown rule(s) {', '.join(sorted(unknown))}; rules: {', '.join(c.RULES)}")

    def enabled(self, rule: str) -> bool:
        return rule not in self.disabled_rules

    def is_candidate_committee(self, committee: str) -> bool:
        return not self.candidate_committee_ids or committee in self.candidate_committee_ids

    @classmethod
    def coerce(cls, value: VetOptions | Mapping[str, Any] | None) -> VetOptions:
        """An instance from an instance, a dict of fields, or None (the defaults)."""
        if isinstance(value, VetOptions):
            return value
        d = dict(value or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise FormatError(f"unknown option(s) {', '.join(sorted(unknown))}")
        for key in ("candidate_committee_ids", "disabled_rules"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["candidate_committee_ids"] = list(self.candidate_committee_ids)
        d["disabled_rules"] = list(self.disabled_rules)
        return d


__all__ = ["VetOptions"]
