"""aws.iam.console_user_without_mfa: IAM users who can sign in to the console without MFA."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...records import CheckMeta, Result
from .common import aws, tags_and_owner, user_rows, user_tags

META = CheckMeta(
    id="aws.iam.console_user_without_mfa",
    title="IAM user with console access has no MFA device",
    severity="high",
    provider="aws",
    resource_type="AwsIamUser",
    risk="A stolen or guessed password alone gives the console; MFA stops most account takeovers.",
    remediation="Enable a virtual or hardware MFA device for the user, or remove their console password.",
    remediation_url="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa_enable.html",
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    tags = user_tags(api)
    for row in user_rows(api):
        arn = row["arn"]
        t, owner = tags_and_owner(tags, arn)
        if row.get("password_enabled") != "true":
            yield Result("PASS", arn, f"user {row['user']} has no console password", tags=t, owner=owner)
        elif row.get("mfa_active") == "true":
            yield Result("PASS", arn, f"user {row['user']} signs in to the console with MFA", tags=t, owner=owner)
        else:
            yield Result("FAIL", arn, f"user {row['user']} has a console password and no MFA", tags=t, owner=owner)


CHECK = Check(META, evaluate)
