"""aws.s3.account_public_access_block: the account does not block public access to S3 at account level."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import aws

META = CheckMeta(
    id="aws.s3.account_public_access_block",
    title="S3 Block Public Access is off at account level",
    severity="high",
    provider="aws",
    resource_type="AwsAccount",
    risk="Without the account-level block, one wrong ACL or bucket policy makes data public.",
    remediation="Turn on all four S3 Block Public Access settings for the account.",
    remediation_url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/configuring-block-public-access-account.html",
)
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    pab = aws(ctx).account_public_access_block()
    rid = f"arn:aws:s3::{ctx.account}:account"
    if pab is None:
        yield Result("FAIL", rid, "the account has no S3 Block Public Access configuration")
        return
    off = [s for s in SETTINGS if not pab.get(s)]
    if off:
        yield Result("FAIL", rid, f"account-level S3 Block Public Access is off for {', '.join(off)}")
    else:
        yield Result("PASS", rid, "account-level S3 Block Public Access is on")


CHECK = Check(META, evaluate)
