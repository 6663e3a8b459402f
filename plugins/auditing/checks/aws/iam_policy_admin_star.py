"""aws.iam.policy_admin_star: IAM policies that allow ``*`` actions on ``*`` resources: customer-managed
policies, inline policies of users, groups and roles, and AWS-managed policies attached to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...check import Check, CheckContext
from ...providers.aws import owner_of, policy_json, tags_of
from ...records import CheckMeta, Result
from .common import admin_statements, aws

META = CheckMeta(
    id="aws.iam.policy_admin_star",
    title="IAM policy allows * on *",
    severity="high",
    provider="aws",
    resource_type="AwsIamPolicy",
    risk="Full administrative rights granted by a policy reach every service and every resource.",
    remediation="Replace the policy with one that names the actions and resources the principal needs.",
    remediation_url="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege",
)

PRINCIPALS = (("UserDetailList", "UserPolicyList", "AwsIamUser"), ("GroupDetailList", "GroupPolicyList", "AwsIamGroup"),
              ("RoleDetailList", "RolePolicyList", "AwsIamRole"))  # fmt: skip


def _default_document(policy: dict[str, Any]) -> dict[str, Any]:
    for version in policy.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return policy_json(version["Document"])
    return {}


def evaluate(ctx: CheckContext) -> Iterator[Result]:
    api = aws(ctx)
    details = api.authorization_details()
    for policy in details["Policies"]:
        arn = policy["Arn"]
        attached = int(policy.get("AttachmentCount", 0))
        name = policy.get("PolicyName") or arn.rsplit("/", 1)[-1]
        if any(admin_statements(_default_document(policy))):
            severity = "critical" if attached else "high"
            msg = f"customer-managed policy {name} allows * on * (attached {attached} time(s))"
            yield Result("FAIL", arn, msg, severity=severity)
        else:
            yield Result("PASS", arn, f"customer-managed policy {name} does not allow * on *")
    for list_key, inline_key, rtype in PRINCIPALS:
        for principal in details[list_key]:
            p_arn = principal["Arn"]
            tags = tags_of(principal.get("Tags"))
            owner = owner_of(tags)
            for inline in principal.get(inline_key, []):
                rid = f"{p_arn}/inline/{inline['PolicyName']}"
                if any(admin_statements(policy_json(inline["PolicyDocument"]))):
                    msg = f"inline policy {inline['PolicyName']} of {p_arn} allows * on *"
                    yield Result("FAIL", rid, msg, severity="critical", resource_type=rtype, tags=tags, owner=owner)
                else:
                    msg = f"inline policy {inline['PolicyName']} of {p_arn} does not allow * on *"
                    yield Result("PASS", rid, msg, resource_type=rtype, tags=tags, owner=owner)
            for attached_policy in principal.get("AttachedManagedPolicies", []):
                a_arn = attached_policy["PolicyArn"]
                attached_name = attached_policy.get("PolicyName") or a_arn.rsplit("/", 1)[-1]
                if ":aws:policy/" not in a_arn:
                    continue  # customer-managed: judged above, once
                rid = f"{p_arn}/attached/{attached_name}"
                if any(admin_statements(api.policy_document(a_arn))):
                    msg = f"AWS-managed policy {attached_name} attached to {p_arn} allows * on *"
                    yield Result("FAIL", rid, msg, severity="critical", resource_type=rtype, tags=tags, owner=owner)
                else:
                    msg = f"AWS-managed policy {attached_name} attached to {p_arn} is not * on *"
                    yield Result("PASS", rid, msg, resource_type=rtype, tags=tags, owner=owner)


CHECK = Check(META, evaluate)
