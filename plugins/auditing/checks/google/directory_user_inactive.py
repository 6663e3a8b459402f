"""google.directory.user_inactive: active users who have not signed in for N days (default 45); a user
who never signed in (lastLoginTime 1970-01-01) counts from the account's creation."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...constants import GOOGLE_INACTIVE_DAYS
from ...records import CheckMeta, Result
from .common import active, email, google, when

META = CheckMeta(
    id="google.directory.user_inactive",
    title="Workspace user has not signed in for too long",
    severity="medium",
    provider="google",
    resource_type="GoogleWorkspaceUser",
    risk="Dormant accounts keep their access and nobody notices when someone else uses them.",
    remediation="Suspend or delete accounts nobody uses; transfer their data first.",
    remediation_url="https://support.google.com/a/answer/33312",
    thresholds={"days": GOOGLE_INACTIVE_DAYS},
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    days = int(ctx.threshold("days"))
    for user in google(ctx).users():
        if not active(user):
            continue
        address = email(user)
        last = when(user.get("lastLoginTime"))
        since = last or when(user.get("creationTime"))
        if since is None or (ctx.now - since).days <= days:
            yield Result("PASS", address, f"{address} signed in within {days} days", owner=address)
            continue
        age = (ctx.now - since).days
        what = f"last signed in {age} days ago" if last else f"never signed in (created {age} days ago)"
        yield Result("FAIL", address, f"{address} {what} (threshold {days} days)", owner=address)


CHECK = Check(META, evaluate)
