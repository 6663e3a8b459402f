"""google.directory.super_admin_without_2sv: super administrators not enrolled in 2-step verification."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import active, email, google

META = CheckMeta(
    id="google.directory.super_admin_without_2sv",
    title="Workspace super administrator without 2-step verification",
    severity="critical",
    provider="google",
    resource_type="GoogleWorkspaceUser",
    risk="A super administrator's password alone gives the whole domain: every user, every file.",
    remediation="Enrol the administrator in 2-step verification (a security key), or take the role away.",
    remediation_url="https://support.google.com/a/answer/9011373",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    for user in google(ctx).users():
        if not user.get("isAdmin") or not active(user):
            continue
        address = email(user)
        if user.get("isEnrolledIn2Sv"):
            yield Result("PASS", address, f"super administrator {address} uses 2-step verification", owner=address)
        else:
            yield Result("FAIL", address, f"super administrator {address} has no 2-step verification", owner=address)


CHECK = Check(META, evaluate)
