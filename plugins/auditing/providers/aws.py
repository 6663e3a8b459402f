"""The AWS side of a run: one boto3 session, its credentials and endpoints from boto3's own chain
(profiles, roles, environment, ``AWS_ENDPOINT_URL``), and every API read the checks share, each made
once per run and remembered (a failure too, so every check that needs it reports the same ERROR).

Blocking (boto3): the runner calls it in a thread. ``calls`` counts the API operations made.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import CheckFailed

T = TypeVar("T")
CREDENTIAL_REPORT_WAIT_S = 60.0
GLOBAL = "global"


class AwsApi:
    """Cached, counted reads of one AWS account.

    Attributes:
        calls: API operations made, by ``service.Operation``.
    """

    provider = "aws"

    def __init__(self, session: Any = None, *, regions: list[str] | None = None, profile: str = "") -> None:
        import boto3

        self.session: Any = session or boto3.Session(profile_name=profile or None)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.session.events.register("before-call", self._count)
        self._clients: dict[tuple[str, str], Any] = {}
        self._memo: dict[tuple[Any, ...], tuple[bool, Any]] = {}  # (read fine, value or exception)
        self._regions = list(regions or [])

    def _count(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            with self._lock:
                self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    @property
    def default_region(self) -> str:
        return str(self.session.region_name or "us-east-1")

    def client(self, service: str, region: str = "") -> Any:
        region = region or self.default_region
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                # retries, timeouts and endpoints as boto3's configuration chain says (AWS_MAX_ATTEMPTS, …)
                c = self.session.client(service, region_name=region)
                if service == "s3control" and "amazonaws.com" not in str(c.meta.endpoint_url):
                    # an S3-compatible endpoint (moto, a proxy) is not reached under <account>.<host>
                    c.meta.events.register("before-sign.s3-control", _no_account_host)
                self._clients[key] = c
            return self._clients[key]

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def cached(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()`` once per run; its exception is remembered and raised again for the next caller."""
        with self._lock:
            hit: tuple[bool, Any] | None = self._memo.get(key)
        if hit is None:
            fresh: Any
            try:
                fresh = (True, read())
            except Exception as e:
                fresh = (False, e)
            hit = fresh
            with self._lock:
                self._memo[key] = hit
        value: Any = hit[1]
        if not hit[0]:
            raise value
        return cast(T, value)

    def _pages(self, service: str, operation: str, key: str, region: str = "", **kwargs: Any) -> Iterator[Any]:
        paginator = self.client(service, region).get_paginator(operation)
        for page in paginator.paginate(**kwargs):
            yield from page.get(key, [])

    # --- account --------------------------------------------------------------------------------

    def account_id(self) -> str:
        return self.cached(("account",), lambda: str(self.client("sts").get_caller_identity()["Account"]))

    def regions(self) -> list[str]:
        """The regions to audit: those given, else every region enabled for the account."""
        if self._regions:
            return list(self._regions)

        def read() -> list[str]:
            found = self.client("ec2").describe_regions(AllRegions=False)["Regions"]
            return sorted(r["RegionName"] for r in found)

        return self.cached(("regions",), read)

    # --- IAM ------------------------------------------------------------------------------------

    def credential_report(self) -> list[dict[str, str]]:
        """The IAM credential report, one row per user (``<root_account>`` for the root user)."""

        def read() -> list[dict[str, str]]:
            iam = self.client("iam")
            deadline = time.monotonic() + CREDENTIAL_REPORT_WAIT_S
            pause_s = 0.25
            while iam.generate_credential_report()["State"] != "COMPLETE":
                if time.monotonic() > deadline:
                    raise CheckFailed(f"the IAM credential report was not ready within {CREDENTIAL_REPORT_WAIT_S:g} s")
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, 4.0)
            content = iam.get_credential_report()["Content"]
            text = content.decode() if isinstance(content, bytes) else str(content)
            return list(csv.DictReader(io.StringIO(text)))

        return self.cached(("credential_report",), read)

    def account_summary(self) -> dict[str, int]:
        return self.cached(("account_summary",), lambda: dict(self.client("iam").get_account_summary()["SummaryMap"]))

    def authorization_details(self) -> dict[str, list[dict[str, Any]]]:
        """Users, groups and roles (with inline policies, attached policies, tags) and the customer-managed
        policies (with their versions), in as few calls as IAM allows."""

        def read() -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {
                "UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []
            }  # fmt: skip
            paginator = self.client("iam").get_paginator("get_account_authorization_details")
            for page in paginator.paginate(Filter=["User", "Group", "Role", "LocalManagedPolicy"]):
                for k in out:
                    out[k] += page.get(k, [])
            return out

        return self.cached(("authorization_details",), read)

    def policy_document(self, arn: str) -> dict[str, Any]:
        """The default version's document of a managed policy (for AWS-managed policies attached)."""

        def read() -> dict[str, Any]:
            iam = self.client("iam")
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            return policy_json(doc)

        return self.cached(("policy", arn), read)

    # --- EC2 / ELB ------------------------------------------------------------------------------

    def security_groups(self, region: str) -> list[dict[str, Any]]:
        return self.cached(
            ("sg", region), lambda: list(self._pages("ec2", "describe_security_groups", "SecurityGroups", region))
        )

    def load_balancers(self, region: str) -> list[dict[str, Any]]:
        """Application/network/gateway load balancers (elbv2) and classic ones (elb, ``Type: classic``)."""

        def read() -> list[dict[str, Any]]:
            v2 = list(self._pages("elbv2", "describe_load_balancers", "LoadBalancers", region))
            classic = [
                {**lb, "Type": "classic", "LoadBalancerArn": _classic_arn(region, self.account_id(), lb)}
                for lb in self._pages("elb", "describe_load_balancers", "LoadBalancerDescriptions", region)
            ]
            return v2 + classic

        return self.cached(("lb", region), read)

    def load_balancer_tags(self, region: str, lbs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        """Tags by load balancer ARN, 20 a call (the APIs' limit), for the given load balancers."""
        out: dict[str, dict[str, str]] = {}
        v2 = [lb["LoadBalancerArn"] for lb in lbs if lb.get("Type") != "classic"]
        classic = {lb["LoadBalancerName"]: lb["LoadBalancerArn"] for lb in lbs if lb.get("Type") == "classic"}
        for i in range(0, len(v2), 20):
            got = self.client("elbv2", region).describe_tags(ResourceArns=v2[i : i + 20])["TagDescriptions"]
            out.update({d["ResourceArn"]: tags_of(d.get("Tags")) for d in got})
        names = sorted(classic)
        for i in range(0, len(names), 20):
            got = self.client("elb", region).describe_tags(LoadBalancerNames=names[i : i + 20])["TagDescriptions"]
            out.update({classic[d["LoadBalancerName"]]: tags_of(d.get("Tags")) for d in got})
        return out

    # --- S3 -------------------------------------------------------------------------------------

    def buckets(self) -> list[dict[str, Any]]:
        return self.cached(("buckets",), lambda: list(self.client("s3").list_buckets().get("Buckets", [])))

    def bucket_region(self, bucket: dict[str, Any]) -> str:
        if bucket.get("BucketRegion"):
            return str(bucket["BucketRegion"])
        name = bucket["Name"]

        def read() -> str:
            where = self.client("s3").get_bucket_location(Bucket=name).get("LocationConstraint")
            return str(where or "us-east-1")

        return self.cached(("bucket_region", name), read)

    def account_public_access_block(self) -> dict[str, bool] | None:
        """The account-level S3 Block Public Access settings (None: not configured)."""

        def read() -> dict[str, bool] | None:
            c = self.client("s3control")
            try:
                return dict(c.get_public_access_block(AccountId=self.account_id())["PublicAccessBlockConfiguration"])
            except c.exceptions.NoSuchPublicAccessBlockConfiguration:
                return None
            except Exception as e:
                if _error_code(e) == "NoSuchPublicAccessBlockConfiguration":
                    return None
                raise

        return self.cached(("account_pab",), read)

    def bucket_public_access_block(self, name: str) -> dict[str, bool] | None:
        def read() -> dict[str, bool] | None:
            try:
                got = self.client("s3").get_public_access_block(Bucket=name)
                return dict(got["PublicAccessBlockConfiguration"])
            except Exception as e:
                if _error_code(e) == "NoSuchPublicAccessBlockConfiguration":
                    return None
                raise

        return self.cached(("bucket_pab", name), read)

    def bucket_acl(self, name: str) -> list[dict[str, Any]]:
        return self.cached(("bucket_acl", name), lambda: list(self.client("s3").get_bucket_acl(Bucket=name)["Grants"]))

    def bucket_policy(self, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return policy_json(self.client("s3").get_bucket_policy(Bucket=name)["Policy"])
            except Exception as e:
                if _error_code(e) == "NoSuchBucketPolicy":
                    return None
                raise

        return self.cached(("bucket_policy", name), read)

    def bucket_tags(self, name: str) -> dict[str, str]:
        def read() -> dict[str, str]:
            try:
                tags = self.client("s3").get_bucket_tagging(Bucket=name)["TagSet"]
            except Exception as e:
                if _error_code(e) == "NoSuchTagSet":
                    return {}
                raise
            return {t["Key"]: t["Value"] for t in tags}

        return self.cached(("bucket_tags", name), read)


def policy_json(doc: Any) -> dict[str, Any]:
    """A policy document as a dict (IAM returns it URL-encoded text in places, a dict in others)."""
    if isinstance(doc, dict):
        return doc
    text = str(doc)
    if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
        text = unquote(text)
    value = json.loads(text)
    if not isinstance(value, dict):
        raise CheckFailed("a policy document is not a JSON object")
    return value


def _no_account_host(request: Any, **_: Any) -> None:
    parts = urlsplit(request.url)
    host, _, rest = parts.netloc.partition(".")
    if host.isdigit() and len(host) == 12 and rest:
        request.url = urlunsplit(parts._replace(netloc=rest))


def _error_code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _classic_arn(region: str, account: str, lb: dict[str, Any]) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{lb['LoadBalancerName']}"


def tags_of(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


OWNER_TAGS = ("owner", "Owner", "OWNER", "owner_email", "email", "Email", "contact")


def owner_of(tags: dict[str, str]) -> str:
    """An owner's e-mail address from the resource's tags, when one of them holds one."""
    for name in OWNER_TAGS:
        value = tags.get(name, "").strip()
        if "@" in value and " " not in value:
            return value
    return ""


__all__ = ["GLOBAL", "AwsApi", "owner_of", "policy_json", "tags_of"]
