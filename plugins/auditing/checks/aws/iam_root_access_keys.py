"""aws.iam.root_access_keys: the root user has access keys."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import ROOT_ROW, aws

META = CheckMeta(
    id="aws.iam.root_access_keys",
    title="Root user has access keys",
    severity="critical",
    provider="aws",
    resource_type="AwsAccount",
    risk="Root keys cannot be limited by any policy; a leaked root key is the whole account.",
    remediation="Delete the root user's access keys; use IAM roles or users with least privilege instead.",
    remediation_url="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html",
)


def root_keys(summary: dict[str, int], report: list[dict[str, str]]) -> int:
    """How many active root access keys the account summary and credential report show."""
    row = next((r for r in report if r.get("user") == ROOT_ROW), None)
    active = sum(1 for n in (1, 2) if row is not None and row.get(f"access_key_{n}_active") == "true")
    return max(active, int(summary.get("AccountAccessKeysPresent", 0)))


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    arn = f"arn:aws:iam::{ctx.account}:root"
    n = root_keys(api.account_summary(), api.credential_report())
    if n:
        yield Result("FAIL", arn, f"the root user has {n} active access key(s)")
    else:
        yield Result("PASS", arn, "the root user has no access keys")


CHECK = Check(META, evaluate)
