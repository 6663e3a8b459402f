"""What several AWS checks share: reading the credential report's dates, IAM users' tags, policy
statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from ...check import CheckContext
from ...providers.aws import AwsApi, owner_of, tags_of

NEVER = ("N/A", "no_information", "not_supported", "")
ROOT_ROW = "<root_account>"


def aws(ctx: CheckContext) -> AwsApi:
    if not isinstance(ctx.api, AwsApi):
        raise TypeError(f"an aws check needs an AwsApi, got {type(ctx.api).__name__}")
    return ctx.api


def report_date(value: str) -> dt.datetime | None:
    """A credential-report timestamp (``2024-01-02T03:04:05+00:00``), or None for N/A, no_information…"""
    if value in NEVER:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def user_rows(api: AwsApi) -> list[dict[str, str]]:
    """The credential report's IAM users (the root row left out)."""
    return [r for r in api.credential_report() if r.get("user") != ROOT_ROW]


def user_tags(api: AwsApi) -> dict[str, dict[str, str]]:
    """Tags by user ARN (empty when the authorization details cannot be read: tags are a nicety here)."""
    try:
        users = api.authorization_details()["UserDetailList"]
    except Exception:
        return {}
    return {u["Arn"]: tags_of(u.get("Tags")) for u in users}


def tags_and_owner(tags_by_arn: dict[str, dict[str, str]], arn: str) -> tuple[dict[str, str], str]:
    tags = tags_by_arn.get(arn, {})
    return tags, owner_of(tags)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def admin_statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The statements that allow every action on every resource."""
    for st in as_list(document.get("Statement")):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = {str(a) for a in as_list(st.get("Action"))}
        resources = {str(r) for r in as_list(st.get("Resource"))}
        if actions & {"*", "*:*"} and "*" in resources:
            yield st


def age_days(now: dt.datetime, when: dt.datetime) -> int:
    return max(0, (now - when).days)


__all__ = [
    "NEVER",
    "ROOT_ROW",
    "admin_statements",
    "age_days",
    "as_list",
    "aws",
    "report_date",
    "tags_and_owner",
    "user_rows",
    "user_tags",
]
