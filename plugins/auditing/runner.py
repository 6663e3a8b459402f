"""Running checks against one provider session: each check's results become findings, and a check
that raises (denied, API error, a bug) becomes one ERROR finding with the reason — never a silent pass.
Blocking (the provider clients are): the job calls ``run_checks`` in a thread."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .check import Check, CheckContext
from .records import Finding, Result

log = logging.getLogger("katopotato.jobs.auditing")


def reason_of(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def finding_of(check: Check, account: str, r: Result, now: str) -> Finding:
    m = check.meta
    return Finding(
        check_id=m.id, status=r.status, severity=r.severity or m.severity, provider=m.provider, account=account,
        resource_id=r.resource_id, resource_type=r.resource_type or m.resource_type, region=r.region,
        message=r.message, title=m.title, risk=m.risk, remediation=m.remediation, remediation_url=m.remediation_url,
        first_seen=now, last_seen=now, tags=dict(r.tags), owner=r.owner,
    )  # fmt: skip


def error_finding(check: Check, account: str, reason: str, now: str) -> Finding:
    return finding_of(check, account, Result("ERROR", account, f"the check could not run: {reason}"), now)


def run_checks(
    api: Any,
    account: str,
    checks: Sequence[Check],
    thresholds: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
    progress: Callable[[int, str], None] | None = None,
) -> list[Finding]:
    stamp = now.isoformat(timespec="seconds")
    out: list[Finding] = []
    for i, check in enumerate(checks):
        ctx = CheckContext(api=api, account=account, thresholds=thresholds.get(check.id, {}), now=now)
        try:
            for result in check.evaluate(ctx):
                out.append(finding_of(check, account, result, stamp))
        except Exception as e:  # every failure of a check is reported, with its reason
            log.warning("check %s could not run: %s", check.id, reason_of(e))
            out.append(error_finding(check, account, reason_of(e), stamp))
        if progress is not None:
            progress(i + 1, check.id)
    return out


__all__ = ["error_finding", "finding_of", "reason_of", "run_checks"]
