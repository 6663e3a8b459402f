"""What the Workspace checks share."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...check import CheckContext
from ...providers.google import NEVER_LOGGED_IN, GoogleApi


def google(ctx: CheckContext) -> GoogleApi:
    if not isinstance(ctx.api, GoogleApi):
        raise TypeError(f"a google check needs a GoogleApi, got {type(ctx.api).__name__}")
    return ctx.api


def when(value: str | None) -> dt.datetime | None:
    """A Directory API timestamp, None for none or the 1970-01-01 "never" value."""
    if not value or value == NEVER_LOGGED_IN or value.startswith("1970-01-01"):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def email(user: dict[str, Any]) -> str:
    return str(user.get("primaryEmail", user.get("id", "")))


def active(user: dict[str, Any]) -> bool:
    return not user.get("suspended") and not user.get("archived")


__all__ = ["active", "email", "google", "when"]
