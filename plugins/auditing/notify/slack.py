"""Slack: one message per run through an incoming webhook, summarising the new failures by severity
(a few of each listed), what was fixed and which checks could not run — never one message per finding."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..constants import SEVERITIES
from ..records import Finding
from .http import post_json

LISTED_PER_SEVERITY = 5


def summary_message(
    new: Sequence[Finding], fixed: int, errors: Sequence[Finding], *, accounts: Sequence[str], report_url: str = ""
) -> dict[str, Any]:
    """The webhook body: ``text`` (the fallback and notification line) and Block Kit sections."""
    by_sev: dict[str, list[Finding]] = defaultdict(list)
    for f in new:
        if f.status == "FAIL":
            by_sev[f.severity].append(f)
    counts = ", ".join(f"{len(by_sev[s])} {s}" for s in reversed(SEVERITIES) if by_sev.get(s))
    where = ", ".join(accounts)
    text = f"Audit of {where}: {sum(len(v) for v in by_sev.values())} new failure(s)"
    text += f" ({counts})" if counts else ""
    text += f", {fixed} fixed" + (f", {len(errors)} check(s) could not run" if errors else "")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]
    for sev in reversed(SEVERITIES):
        items = by_sev.get(sev, [])
        if not items:
            continue
        lines = [f"• `{f.check_id}` {f.resource_id} ({f.region}): {f.message}" for f in items[:LISTED_PER_SEVERITY]]
        if len(items) > LISTED_PER_SEVERITY:
            lines.append(f"… and {len(items) - LISTED_PER_SEVERITY} more")
        body = f"*{sev}* ({len(items)})\n" + "\n".join(lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    if errors:
        lines = [f"• `{f.check_id}`: {f.message}" for f in errors[:LISTED_PER_SEVERITY]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*could not run*\n" + "\n".join(lines)}})
    if report_url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{report_url}|full report>"}]})
    return {"text": text, "blocks": blocks}


async def send_slack(webhook_url: str, message: dict[str, Any]) -> None:
    await post_json(webhook_url, message, what="the Slack webhook")


__all__ = ["send_slack", "summary_message"]
