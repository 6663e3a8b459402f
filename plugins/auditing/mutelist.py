"""The mute list: YAML rules that mark matching failures MUTED (reported as such, never hidden).

```yaml
mutes:
  - provider: aws                    # default: any
    account: "123456789012"          # glob, default: any
    check: aws.s3.bucket_public      # glob, default: any
    region: "*"                      # glob, default: any
    resource: "arn:aws:s3:::www-*"   # glob over the resource id, default: any
    tags: {purpose: website}         # every tag must be present, values are globs
    expires: 2027-01-31              # applies up to and including that day (UTC); optional
    reason: the public website's assets
    who: alice@example.org
```

A top-level list is accepted too. ``reason`` and ``who`` are required; an unknown key, a bad date, a
file that is not YAML: ``MutelistError`` naming the file and the entry. An expired rule stops applying
(the run's summary lists it).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import MutelistError
from .records import Finding


class Mute(BaseModel):
    """One rule of the mute list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str = "*"
    account: str = "*"
    check: str = "*"
    region: str = "*"
    resource: str = "*"
    tags: dict[str, str] = Field(default_factory=dict)
    expires: dt.date | None = None
    reason: str = Field(min_length=1)
    who: str = Field(min_length=1)

    @field_validator("provider", "account", "check", "region", "resource", "reason", "who", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)  # an account id written without quotes
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires

    def matches(self, f: Finding) -> bool:
        return self.matches_fields(f.provider, f.account, f.check_id, f.region, f.resource_id, f.tags)

    def matches_fields(
        self, provider: str, account: str, check_id: str, region: str, resource_id: str, tags: dict[str, str]
    ) -> bool:
        """Whether the rule matches a finding with these fields (a stored state entry has no tags)."""
        fields = ((self.provider, provider), (self.account, account), (self.check, check_id),
                  (self.region, region), (self.resource, resource_id))  # fmt: skip
        if not all(fnmatch.fnmatchcase(value, pattern) for pattern, value in fields):
            return False
        return all(k in tags and fnmatch.fnmatchcase(tags[k], pattern) for k, pattern in self.tags.items())


class Mutelist:
    """The rules of one mute list, and what applying them did."""

    def __init__(self, mutes: Iterable[Mute] = (), source: str = "") -> None:
        self.mutes = list(mutes)
        self.source = source

    @classmethod
    def parse(cls, text: str, source: str = "mute list") -> Mutelist:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise MutelistError(f"{source} is not valid YAML: {' '.join(str(e).split())}") from e
        if doc is None:
            return cls([], source)
        if isinstance(doc, dict):
            unknown = set(doc) - {"mutes"}
            if unknown:
                raise MutelistError(f"{source}: unknown top-level key(s) {', '.join(map(str, sorted(unknown)))}")
            doc = doc.get("mutes") or []
        if not isinstance(doc, list):
            raise MutelistError(f"{source}: expected a list of mutes (or {{mutes: [...]}})")
        mutes = []
        for i, item in enumerate(doc, 1):
            if not isinstance(item, dict):
                raise MutelistError(f"{source}: mute {i} is not a mapping")
            try:
                mutes.append(Mute.model_validate(item))
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "entry"
                raise MutelistError(f"{source}: mute {i}: {where}: {err['msg']}") from e
        return cls(mutes, source)

    @classmethod
    def load(cls, path: str | Path) -> Mutelist:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MutelistError(f"cannot read the mute list {path}: {e}") from e
        return cls.parse(text, str(path))

    def expired(self, today: dt.date) -> list[Mute]:
        return [m for m in self.mutes if m.expired(today)]

    def apply(self, findings: Iterable[Finding], today: dt.date) -> int:
        """Mark failures a live rule matches MUTED (with the rule's reason and who); returns how many."""
        live = [m for m in self.mutes if not m.expired(today)]
        n = 0
        for f in findings:
            if f.status != "FAIL":
                continue
            rule = next((m for m in live if m.matches(f)), None)
            if rule is not None:
                f.status, f.muted_reason, f.muted_by = "MUTED", rule.reason, rule.who
                n += 1
        return n


__all__ = ["Mute", "Mutelist"]
