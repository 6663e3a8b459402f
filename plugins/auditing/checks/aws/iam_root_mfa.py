"""aws.iam.root_mfa_disabled: the root user has no MFA device."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import ROOT_ROW, aws

META = CheckMeta(
    id="aws.iam.root_mfa_disabled",
    title="Root user has no MFA",
    severity="critical",
    provider="aws",
    resource_type="AwsAccount",
    risk="The root user can do anything, including closing the account; a password alone protects it.",
    remediation="Enable a hardware or virtual MFA device for the root user.",
    remediation_url="https://docs.aws.amazon.com/IAM/latest/UserGuide/enable-mfa-for-root.html",
)


def root_mfa(summary: dict[str, int], report: list[dict[str, str]]) -> bool:
    row = next((r for r in report if r.get("user") == ROOT_ROW), None)
    return bool(int(summary.get("AccountMFAEnabled", 0))) or (row is not None and row.get("mfa_active") == "true")


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    arn = f"arn:aws:iam::{ctx.account}:root"
    if root_mfa(api.account_summary(), api.credential_report()):
        yield Result("PASS", arn, "the root user has MFA")
    else:
        yield Result("FAIL", arn, "the root user has no MFA device")


CHECK = Check(META, evaluate)
