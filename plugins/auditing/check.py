"""What a check is: its metadata and a function from a ``CheckContext`` to ``Result``s.

A check module (one per check, ``checks/<provider>/<name>.py``) defines ``CHECK = Check(CheckMeta(...),
evaluate)``. ``evaluate(ctx)`` reads the provider's API through ``ctx.api`` (the provider's session,
which caches what several checks read, so each API is called once per run) and yields one ``Result``
per resource it judged. Whatever it raises becomes an ERROR finding with the reason: a check that
cannot run is never a silent pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import CheckMeta, Result


@dataclass(frozen=True)
class CheckContext:
    """What a check's ``evaluate`` gets.

    Attributes:
        api: the provider session (``AwsApi`` for ``aws`` checks, ``GoogleApi``, ``GitHubApi``).
        account: the account (AWS account id, Workspace customer/domain, GitHub org) being audited.
        thresholds: the check's thresholds: its defaults, overridden by the run's settings.
        now: the run's time (UTC); checks measure ages against it.
    """

    api: Any
    account: str
    thresholds: Mapping[str, Any]
    now: dt.datetime

    def threshold(self, name: str) -> Any:
        return self.thresholds[name]


Evaluate = Callable[[CheckContext], Iterable[Result]]


@dataclass(frozen=True)
class Check:
    """A check: its metadata and its evaluation."""

    meta: CheckMeta
    evaluate: Evaluate = field(repr=False)

    @property
    def id(self) -> str:
        return self.meta.id

    def thresholds(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults with ``overrides`` (unknown names are rejected by the registry)."""
        return {**self.meta.thresholds, **dict(overrides or {})}


__all__ = ["Check", "CheckContext", "Evaluate"]
