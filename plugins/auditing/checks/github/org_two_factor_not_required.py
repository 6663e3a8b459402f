"""github.org.two_factor_not_required: the organisation does not require two-factor authentication."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...errors import CheckFailed
from ...records import CheckMeta, Result
from .common import github

META = CheckMeta(
    id="github.org.two_factor_not_required",
    title="GitHub organisation does not require 2FA",
    severity="high",
    provider="github",
    resource_type="GitHubOrganization",
    risk="Any member's leaked password opens the organisation's code, secrets and CI.",
    remediation="Organisation settings > Authentication security > Require two-factor authentication.",
    remediation_url="https://docs.github.com/en/organizations/keeping-your-organization-secure/managing-two-factor-authentication-for-your-organization/requiring-two-factor-authentication-in-your-organization",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    required = github(ctx).two_factor_required()
    if required is None:
        raise CheckFailed("the token cannot see the organisation's 2FA requirement (it needs an owner's token)")
    if required:
        yield Result("PASS", ctx.account, f"organisation {ctx.account} requires 2FA")
    else:
        yield Result("FAIL", ctx.account, f"organisation {ctx.account} does not require 2FA")


CHECK = Check(META, evaluate)
