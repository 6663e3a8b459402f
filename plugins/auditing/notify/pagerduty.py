"""PagerDuty Events API v2: page when a run crosses the threshold (any new failure at or above
``page_severity``, or more than ``page_high_count`` new high ones), one event per paged finding with
the finding's stable key as ``dedup_key`` — a standing failure is never paged twice (the state
remembers it was paged, and PagerDuty folds a repeated key into the open incident) — and a
``resolve`` event with the same key once it is fixed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..constants import SEVERITIES
from ..records import Finding
from .http import post_json

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "informational": "info"}


def dedup_key(finding_key: str) -> str:
    return f"couchpotato-audit-{finding_key}"


def to_page(new: Sequence[Finding], page_severity: str, page_high_count: int) -> list[Finding]:
    """The new failures to page for (empty: the threshold is not crossed)."""
    rank = SEVERITIES.index
    failing = [f for f in new if f.status == "FAIL"]
    over = [f for f in failing if rank(f.severity) >= rank(page_severity)]
    highs = [f for f in failing if f.severity == "high"]
    chosen = over + (highs if len(highs) > page_high_count else [])
    unique = {f.key: f for f in chosen}
    return list(unique.values())


def trigger_event(routing_key: str, f: Finding, source: str = "couchpotato-auditing") -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(f.key),
        "payload": {
            "summary": f"[{f.severity}] {f.title}: {f.message}"[:1024],
            "source": f"{f.provider}:{f.account}",
            "severity": PD_SEVERITY[f.severity],
            "component": f.resource_id,
            "group": f.region,
            "class": f.check_id,
            "custom_details": {"remediation": f.remediation, "remediation_url": f.remediation_url,
                               "first_seen": f.first_seen, "check": f.check_id},
        },
        "client": source,
    }  # fmt: skip


def resolve_event(routing_key: str, key: str) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(key)}


async def send_event(url: str, event: dict[str, Any]) -> None:
    await post_json(url or EVENTS_URL, event, what="PagerDuty Events API")


__all__ = ["EVENTS_URL", "dedup_key", "resolve_event", "send_event", "to_page", "trigger_event"]
