"""github.org.member_without_2fa: organisation members without two-factor authentication."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import github

META = CheckMeta(
    id="github.org.member_without_2fa",
    title="GitHub organisation member without 2FA",
    severity="high",
    provider="github",
    resource_type="GitHubUser",
    risk="The member's password alone gives their access to the organisation's repositories.",
    remediation="Ask the member to enable 2FA, or remove them; requiring 2FA removes them automatically.",
    remediation_url="https://docs.github.com/en/authentication/securing-your-account-with-two-factor-authentication-2fa",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = github(ctx)
    without = set(api.members_without_2fa())
    for login in api.members():
        rid = f"{ctx.account}/{login}"
        if login in without:
            yield Result("FAIL", rid, f"member {login} of {ctx.account} has no 2FA")
        else:
            yield Result("PASS", rid, f"member {login} of {ctx.account} uses 2FA")


CHECK = Check(META, evaluate)
