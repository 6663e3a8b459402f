"""google.directory.suspended_admin: suspended users who still hold an administrator role."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import email, google

META = CheckMeta(
    id="google.directory.suspended_admin",
    title="Suspended Workspace user still holds an admin role",
    severity="medium",
    provider="google",
    resource_type="GoogleWorkspaceUser",
    risk="Restoring the account restores its administrator rights; a leaver's access is one click away.",
    remediation="Remove the admin roles of suspended users (Admin console > Account > Admin roles).",
    remediation_url="https://support.google.com/a/answer/172176",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    for user in google(ctx).users():
        if not user.get("suspended"):
            continue
        address = email(user)
        held = (("super admin", user.get("isAdmin")), ("delegated admin", user.get("isDelegatedAdmin")))
        roles = [role for role, has in held if has]
        if roles:
            yield Result("FAIL", address, f"suspended user {address} is still {' and '.join(roles)}")
        else:
            yield Result("PASS", address, f"suspended user {address} holds no admin role")


CHECK = Check(META, evaluate)
