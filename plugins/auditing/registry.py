"""The registry of checks: the ones the plugin ships and third parties' checks, registered under the
entry-point group ``couchpotato.auditing.checks`` (each entry point names a ``Check`` or a list of
them), the same mechanism the host uses for plugins::

    [project.entry-points."couchpotato.auditing.checks"]
    dns_open_resolvers = "acme_checks.dns:CHECK"
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from .check import Check
from .checks import BUILTIN_CHECKS
from .constants import CHECK_ENTRY_POINT_GROUP
from .errors import CheckRegistryError


class CheckRegistry:
    """Checks by id."""

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        for check in checks:
            self.add(check)

    def add(self, check: Check) -> Check:
        if not isinstance(check, Check):
            raise CheckRegistryError(f"{check!r} is not an auditing Check")
        if check.id in self._checks:
            raise CheckRegistryError(f"two checks have the id {check.id}")
        self._checks[check.id] = check
        return check

    def get(self, check_id: str) -> Check:
        try:
            return self._checks[check_id]
        except KeyError:
            raise CheckRegistryError(f"no check {check_id}; known: {', '.join(sorted(self._checks))}") from None

    @property
    def checks(self) -> list[Check]:
        return [self._checks[k] for k in sorted(self._checks)]

    def providers(self) -> list[str]:
        return sorted({c.meta.provider for c in self._checks.values()})

    def select(self, provider: str, patterns: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Check]:
        """The provider's checks whose id matches one of ``patterns`` (globs; none: all) and none of ``skip``."""
        want, unwanted = list(patterns), list(skip)
        chosen = [
            c
            for c in self.checks
            if c.meta.provider == provider
            and (not want or any(fnmatch.fnmatchcase(c.id, p) for p in want))
            and not any(fnmatch.fnmatchcase(c.id, p) for p in unwanted)
        ]
        for p in want:
            if not any(fnmatch.fnmatchcase(c.id, p) for c in self.checks):
                raise CheckRegistryError(f"no check matches {p!r}")
        return chosen

    def thresholds(self, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each check's thresholds with ``{check id: {name: value}}`` applied; unknown names fail."""
        for check_id, values in overrides.items():
            known = self.get(check_id).meta.thresholds
            unknown = set(values) - set(known)
            if unknown:
                names = ", ".join(sorted(known)) or "none"
                raise CheckRegistryError(f"check {check_id} has no threshold {', '.join(sorted(unknown))} ({names})")
        return {c.id: c.thresholds(overrides.get(c.id)) for c in self.checks}


def _entry_point_checks() -> list[Check]:
    out: list[Check] = []
    for ep in entry_points(group=CHECK_ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as e:
            raise CheckRegistryError(f"cannot load check entry point {ep.name} ({ep.value}): {e}") from e
        items = obj if isinstance(obj, list | tuple) else [obj]
        for item in items:
            if not isinstance(item, Check):
                raise CheckRegistryError(f"check entry point {ep.name} ({ep.value}) is not a Check")
            out.append(item)
    return out


def load_checks() -> CheckRegistry:
    """The built-in checks and every check registered under ``couchpotato.auditing.checks``."""
    return CheckRegistry([*BUILTIN_CHECKS, *_entry_point_checks()])


__all__ = ["CheckRegistry", "load_checks"]
