"""Each AWS check against moto in server mode over HTTP (boto3 through AWS_ENDPOINT_URL): a passing
and a failing fixture for each, and an ERROR (never a silent pass) when an API cannot be reached."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest

from plugins.auditing import Finding, load_checks, run_checks
from plugins.auditing.checks.aws.iam_root_access_keys import root_keys
from plugins.auditing.checks.aws.iam_root_mfa import root_mfa
from plugins.auditing.providers import AwsApi, ProviderOptions, close_api, open_api

from .conftest import ACCOUNT, REGION

pytestmark = pytest.mark.timeout(120)
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
S3_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def audit(check_id: str, *, now: dt.datetime | None = None, thresholds: dict[str, Any] | None = None) -> list[Finding]:
    registry = load_checks()
    api, account = open_api("aws", ProviderOptions(aws_regions=[REGION]))
    assert account == ACCOUNT
    checks = registry.select("aws", [check_id])
    assert [c.id for c in checks] == [check_id]
    limits = registry.thresholds({check_id: thresholds or {}})
    try:
        return run_checks(api, account, checks, limits, now or dt.datetime.now(dt.UTC))
    finally:
        close_api(api)


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    assert not [f for f in findings if f.status == "ERROR"], [f.message for f in findings]
    return {f.resource_id.rsplit("/", 1)[-1]: f for f in findings}


def s3control() -> Any:
    """An s3control client that reaches moto (the plugin's own: no account-id host prefix off AWS)."""
    return AwsApi(regions=[REGION]).client("s3control")


def user_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def test_console_user_without_mfa(aws: str) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName="nomfa", Tags=[{"Key": "owner", "Value": "nomfa@example.org"}])
    iam.create_login_profile(UserName="nomfa", Password="Sup3r-secret!")
    iam.create_user(UserName="withmfa")
    iam.create_login_profile(UserName="withmfa", Password="Sup3r-secret!")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="withmfa")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="withmfa", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    iam.create_user(UserName="apionly")
    found = by_resource(audit("aws.iam.console_user_without_mfa"))
    assert found["nomfa"].status == "FAIL" and found["nomfa"].owner == "nomfa@example.org"
    assert found["nomfa"].resource_id == user_arn("nomfa") and found["nomfa"].severity == "high"
    assert found["withmfa"].status == "PASS" and found["apionly"].status == "PASS"


def test_credentials_unused_counts_from_creation_when_never_used(aws: str) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName="keyholder")
    iam.create_access_key(UserName="keyholder")
    iam.create_user(UserName="consoleonly")
    iam.create_login_profile(UserName="consoleonly", Password="Sup3r-secret!")
    today = by_resource(audit("aws.iam.credentials_unused"))
    assert today["keyholder"].status == "PASS" and today["consoleonly"].status == "PASS"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    stale = by_resource(audit("aws.iam.credentials_unused", now=later))
    assert stale["keyholder"].status == "FAIL" and "access key 1 never used" in stale["keyholder"].message
    assert stale["consoleonly"].status == "FAIL" and "console password never used" in stale["consoleonly"].message
    # the threshold is configurable: 90 days is not crossed 60 days on
    relaxed = by_resource(audit("aws.iam.credentials_unused", now=later, thresholds={"days": 90}))
    assert relaxed["keyholder"].status == "PASS"


def test_root_checks_in_moto(aws: str) -> None:
    """moto's account has no root keys and no root MFA (it cannot be given either)."""
    [keys] = audit("aws.iam.root_access_keys")
    assert keys.status == "PASS" and keys.resource_id == f"arn:aws:iam::{ACCOUNT}:root"
    [mfa] = audit("aws.iam.root_mfa_disabled")
    assert mfa.status == "FAIL" and mfa.severity == "critical"


def test_root_checks_read_the_root_row_of_a_real_credential_report() -> None:
    """The other halves, from AWS's documented report format (moto's report has no root row)."""
    header = (
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
        "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
        "access_key_1_last_used_date,access_key_2_active"
    ).split(",")
    root = dict(
        zip(
            header,
            [
                "<root_account>",
                f"arn:aws:iam::{ACCOUNT}:root",
                "2020-01-01T00:00:00+00:00",
                "not_supported",
                "2024-05-01T00:00:00+00:00",
                "not_supported",
                "not_supported",
                "true",
                "true",
                "2020-01-01T00:00:00+00:00",
                "N/A",
                "false",
            ],
            strict=True,
        )
    )
    assert root_keys({"AccountAccessKeysPresent": 0}, [root]) == 1
    assert root_keys({"AccountAccessKeysPresent": 0}, [{**root, "access_key_1_active": "false"}]) == 0
    assert root_keys({"AccountAccessKeysPresent": 1}, []) == 1
    assert root_mfa({"AccountMFAEnabled": 0}, [root]) is True
    assert root_mfa({"AccountMFAEnabled": 1}, []) is True
    assert root_mfa({"AccountMFAEnabled": 0}, [{**root, "mfa_active": "false"}]) is False


def test_policy_admin_star(aws: str) -> None:
    iam = boto3.client("iam")
    star = iam.create_policy(PolicyName="star", PolicyDocument=json.dumps(ADMIN))["Policy"]["Arn"]
    iam.create_policy(PolicyName="narrow", PolicyDocument=json.dumps(S3_ONLY))
    iam.create_user(UserName="u")
    iam.attach_user_policy(UserName="u", PolicyArn=star)
    iam.put_user_policy(UserName="u", PolicyName="inline-star", PolicyDocument=json.dumps(ADMIN))
    iam.put_user_policy(UserName="u", PolicyName="inline-narrow", PolicyDocument=json.dumps(S3_ONLY))
    iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.attach_role_policy(RoleName="ops", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.attach_role_policy(RoleName="ops", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    found = by_resource(audit("aws.iam.policy_admin_star"))
    assert found["star"].status == "FAIL" and found["star"].severity == "critical"  # attached
    assert found["narrow"].status == "PASS"
    assert found["inline-star"].status == "FAIL" and found["inline-narrow"].status == "PASS"
    assert found["AdministratorAccess"].status == "FAIL"
    assert found["AdministratorAccess"].resource_id == f"arn:aws:iam::{ACCOUNT}:role/ops/attached/AdministratorAccess"
    assert found["ReadOnlyAccess"].status == "PASS"


def test_security_group_open_ingress(aws: str) -> None:
    ec2 = boto3.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]

    def group(name: str, perms: list[dict[str, Any]], tags: dict[str, str] | None = None) -> str:
        spec = [{"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
        gid = ec2.create_security_group(
            GroupName=name, Description=name, VpcId=vpc, **({"TagSpecifications": spec} if tags else {})
        )["GroupId"]
        if perms:
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        return str(gid)

    world = [{"CidrIp": "0.0.0.0/0"}]
    ssh = group("ssh", [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": world}], {"owner": "o@x.org"})
    v6 = group("v6-all", [{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ping = group("ping", [{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": world}])
    app = group("app", [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": world}])
    web_ = group("web", [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": world}])
    office = group(
        "office", [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}]
    )
    found = by_resource(audit("aws.ec2.security_group_open_ingress"))
    assert found[ssh].status == "FAIL" and found[ssh].severity == "high" and found[ssh].owner == "o@x.org"
    assert "tcp 22 from 0.0.0.0/0" in found[ssh].message and found[ssh].region == REGION
    assert found[v6].status == "FAIL" and found[v6].severity == "high" and "all traffic from ::/0" in found[v6].message
    assert found[app].status == "FAIL" and found[app].severity == "medium"
    assert found[web_].status == "PASS" and found[office].status == "PASS"
    assert (
        found[ping].status == "FAIL"
        and found[ping].severity == "medium"
        and "icmp from 0.0.0.0/0" in found[ping].message
    )
    allowed = by_resource(audit("aws.ec2.security_group_open_ingress", thresholds={"allowed_ports": [443, 8080]}))
    assert allowed[app].status == "PASS"


def test_elb_internet_facing(aws: str) -> None:
    ec2 = boto3.client("ec2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    elbv2 = boto3.client("elbv2")
    elbv2.create_load_balancer(
        Name="public-alb", Subnets=subnets, Scheme="internet-facing", Tags=[{"Key": "owner", "Value": "web@x.org"}]
    )
    elbv2.create_load_balancer(Name="private-nlb", Subnets=subnets, Scheme="internal", Type="network")
    boto3.client("elb").create_load_balancer(
        LoadBalancerName="old-classic",
        AvailabilityZones=[f"{REGION}a"],
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
    )
    found = {f.message.split(" load balancer ")[1].split(" ")[0]: f for f in audit("aws.elb.internet_facing")}
    assert found["public-alb"].status == "FAIL" and found["private-nlb"].status == "PASS"
    assert found["public-alb"].tags == {"owner": "web@x.org"} and found["public-alb"].owner == "web@x.org"
    classic = found["old-classic"]
    assert classic.status == "FAIL" and classic.resource_id.endswith("loadbalancer/old-classic")


def test_s3_bucket_public(aws: str) -> None:
    s3 = boto3.client("s3")
    for name in ("acl-public", "policy-public", "private", "blocked"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_acl(Bucket="acl-public", ACL="public-read")
    s3.put_bucket_tagging(Bucket="acl-public", Tagging={"TagSet": [{"Key": "owner", "Value": "web@example.org"}]})
    everyone = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Anyone",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::policy-public/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket="policy-public", Policy=json.dumps(everyone))
    s3.put_bucket_acl(Bucket="blocked", ACL="public-read")
    s3.put_public_access_block(
        Bucket="blocked",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    found = {f.resource_id.split(":::")[1]: f for f in audit("aws.s3.bucket_public")}
    assert found["acl-public"].status == "FAIL" and "AllUsers:READ" in found["acl-public"].message
    assert found["acl-public"].owner == "web@example.org" and found["acl-public"].tags == {"owner": "web@example.org"}
    assert found["policy-public"].status == "FAIL" and "policy Anyone allows everyone" in found["policy-public"].message
    assert found["private"].status == "PASS" and found["blocked"].status == "PASS"
    # the account-level block makes every bucket non-public
    s3control().put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    assert {f.status for f in audit("aws.s3.bucket_public")} == {"PASS"}


def test_s3_account_public_access_block(aws: str) -> None:
    [missing] = audit("aws.s3.account_public_access_block")
    assert missing.status == "FAIL" and "no S3 Block Public Access" in missing.message
    s3control().put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": True,
        },
    )
    [partial] = audit("aws.s3.account_public_access_block")
    assert partial.status == "FAIL" and partial.message.endswith("off for BlockPublicPolicy")
    s3control().put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    [on] = audit("aws.s3.account_public_access_block")
    assert on.status == "PASS"


def test_a_check_that_cannot_reach_its_api_is_an_error_not_a_pass(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("s3").create_bucket(Bucket="somebucket")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # S3 alone is down
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    [error] = audit("aws.s3.bucket_public")
    assert error.status == "ERROR" and error.resource_id == ACCOUNT
    assert "could not run" in error.message and "127.0.0.1:9" in error.message
    [fine] = audit("aws.iam.root_access_keys")  # the rest still runs
    assert fine.status == "PASS"
