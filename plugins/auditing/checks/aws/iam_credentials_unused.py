"""aws.iam.credentials_unused: console passwords and access keys not used for N days (default 45),
from the credential report; a credential never used counts from when it was created."""

from __future__ import annotations

from collections.abc import Iterator

from ...check import Check, CheckContext
from ...constants import UNUSED_CREDENTIAL_DAYS
from ...records import CheckMeta, Result
from .common import age_days, aws, report_date, tags_and_owner, user_rows, user_tags

META = CheckMeta(
    id="aws.iam.credentials_unused",
    title="IAM password or access key unused for too long",
    severity="medium",
    provider="aws",
    resource_type="AwsIamUser",
    risk="Credentials nobody uses are credentials nobody watches: a leak goes unnoticed.",
    remediation="Deactivate or delete access keys and console passwords not used within the threshold.",
    remediation_url="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_finding-unused.html",
    thresholds={"days": UNUSED_CREDENTIAL_DAYS},
)


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    days = int(ctx.threshold("days"))
    tags = user_tags(api)
    for row in user_rows(api):
        arn, user = row["arn"], row["user"]
        created = report_date(row.get("user_creation_time", ""))
        stale: list[str] = []
        if row.get("password_enabled") == "true":
            used = report_date(row.get("password_last_used", ""))
            since = used or created
            if since is not None and age_days(ctx.now, since) > days:
                what = f"last used {age_days(ctx.now, used)} days ago" if used else "never used"
                stale.append(f"console password {what}")
        for n in (1, 2):
            if row.get(f"access_key_{n}_active") != "true":
                continue
            used = report_date(row.get(f"access_key_{n}_last_used_date", ""))
            since = used or report_date(row.get(f"access_key_{n}_last_rotated", "")) or created
            if since is not None and age_days(ctx.now, since) > days:
                what = f"last used {age_days(ctx.now, used)} days ago" if used else "never used"
                stale.append(f"access key {n} {what}")
        t, owner = tags_and_owner(tags, arn)
        if stale:
            msg = f"user {user}: {'; '.join(stale)} (threshold {days} days)"
            yield Result("FAIL", arn, msg, tags=t, owner=owner)
        else:
            yield Result("PASS", arn, f"user {user}: every credential used within {days} days", tags=t, owner=owner)


CHECK = Check(META, evaluate)
