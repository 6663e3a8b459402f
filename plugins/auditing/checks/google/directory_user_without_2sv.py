"""google.directory.user_without_2sv: active users not enrolled in 2-step verification."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import active, email, google

META = CheckMeta(
    id="google.directory.user_without_2sv",
    title="Workspace user not enrolled in 2-step verification",
    severity="high",
    provider="google",
    resource_type="GoogleWorkspaceUser",
    risk="A phished password alone opens the user's mail, files and every app signed in with Google.",
    remediation="Have the user enrol in 2-step verification, and enforce it for their organisational unit.",
    remediation_url="https://support.google.com/a/answer/175197",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    for user in google(ctx).users():
        address = email(user)
        if not active(user):
            continue
        if user.get("isEnrolledIn2Sv"):
            yield Result("PASS", address, f"{address} is enrolled in 2-step verification", owner=address)
        else:
            yield Result("FAIL", address, f"{address} is not enrolled in 2-step verification", owner=address)


CHECK = Check(META, evaluate)
