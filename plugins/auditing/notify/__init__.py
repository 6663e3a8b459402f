"""Where a run's results go besides its report: Slack, PagerDuty, owners' e-mail, Prometheus."""

from __future__ import annotations

from .mail import MailOptions, owner_messages, send_messages
from .metrics import build_registry, exposition, push
from .pagerduty import dedup_key, resolve_event, send_event, to_page, trigger_event
from .slack import send_slack, summary_message

__all__ = [
    "MailOptions",
    "build_registry",
    "dedup_key",
    "exposition",
    "owner_messages",
    "push",
    "resolve_event",
    "send_event",
    "send_messages",
    "send_slack",
    "summary_message",
    "to_page",
    "trigger_event",
]
