"""aws.s3.bucket_public: buckets readable or writable by anyone, through their ACL or their policy,
and not neutralised by Block Public Access (the account's settings, then the bucket's). When the
account blocks public ACLs and policies, no bucket can be public and no bucket is read one by one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...check import Check, CheckContext
from ...providers.aws import owner_of
from ...records import CheckMeta, Result
from .common import as_list, aws

META = CheckMeta(
    id="aws.s3.bucket_public",
    title="S3 bucket is public",
    severity="critical",
    provider="aws",
    resource_type="AwsS3Bucket",
    risk="Anyone on the internet can list, read or write the bucket's objects.",
    remediation="Remove the public grants and policy statements, and turn on S3 Block Public Access.",
    remediation_url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html",
)
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def public_grants(grants: list[dict[str, Any]]) -> list[str]:
    return [
        f"{g['Grantee']['URI'].rsplit('/', 1)[1]}:{g.get('Permission', '')}"
        for g in grants
        if g.get("Grantee", {}).get("Type") == "Group" and g["Grantee"].get("URI") in PUBLIC_GROUPS
    ]


def public_statements(policy: dict[str, Any] | None) -> list[str]:
    """Sids (or positions) of Allow statements for everyone without a condition."""
    out = []
    for i, st in enumerate(as_list((policy or {}).get("Statement"))):
        if not isinstance(st, dict) or st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))
        if everyone:
            out.append(str(st.get("Sid") or f"statement {i}"))
    return out


def _blocks(pab: dict[str, bool] | None) -> tuple[bool, bool]:
    """(public ACLs ignored, public policies restricted)."""
    if not pab:
        return False, False
    return bool(pab.get("IgnorePublicAcls")), bool(pab.get("RestrictPublicBuckets"))


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    acct_acl, acct_policy = _blocks(api.account_public_access_block())
    for bucket in api.buckets():
        name = bucket["Name"]
        arn = f"arn:aws:s3:::{name}"
        if acct_acl and acct_policy:
            yield Result("PASS", arn, f"bucket {name}: the account blocks public access", region="global")
            continue
        region = api.bucket_region(bucket)
        b_acl, b_policy = _blocks(api.bucket_public_access_block(name))
        reasons = []
        if not (acct_acl or b_acl):
            reasons += [f"ACL grants {g}" for g in public_grants(api.bucket_acl(name))]
        if not (acct_policy or b_policy):
            reasons += [f"policy {s} allows everyone" for s in public_statements(api.bucket_policy(name))]
        if reasons:
            tags = api.bucket_tags(name)
            msg = f"bucket {name} is public: {'; '.join(reasons)}"
            yield Result("FAIL", arn, msg, region=region, tags=tags, owner=owner_of(tags))
        else:
            yield Result("PASS", arn, f"bucket {name} is not public", region=region)


CHECK = Check(META, evaluate)
