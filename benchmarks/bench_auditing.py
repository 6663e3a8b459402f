"""Auditing benchmark: a full AWS audit of a large account in moto, against a naive audit that calls
each API once per resource, printed as a table (time and API calls).

    .venv/bin/python benchmarks/bench_auditing.py [--users 1000] [--groups 500] [--buckets 200]
        [--seed 7] [--out benchmarks/results/auditing.md]

The account (seeded, built in moto's server mode on a loopback port, reached by boto3 through
AWS_ENDPOINT_URL exactly as the plugin is in production):

- ``--users`` IAM users: 40 % with a console password (a third of those with an MFA device), 60 %
  with an access key, 5 % with an inline policy (a fifth of which allow * on *), 10 customer-managed
  policies (3 of them * on *);
- ``--groups`` security groups in one region: 30 % open SSH to 0.0.0.0/0, 10 % open 443 only,
  the rest open to a private range;
- ``--buckets`` S3 buckets: 10 % public-read by ACL, 5 % public by policy, the rest private.

Both audits answer the same questions (console users without MFA, unused credentials, * on *
policies, security groups open to the world, public buckets) and must agree on the counts of
failures; the table says whether they do. "Plugin" is ``run_checks`` with every AWS check (one
credential report, one authorization-details listing, one paginated security-group listing, the
account-level S3 block, then per-bucket reads only where they can change the answer); "naive" walks
the resources and asks about each one.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REGION = "us-east-1"
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
NARROW = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
HIGH_RISK = {20, 21, 22, 23, 25, 445, 1433, 1521, 2049, 3306, 3389, 5432, 5439, 5984, 6379, 9200, 11211, 27017}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def counting_session() -> tuple[Any, Counter[str]]:
    import boto3

    calls: Counter[str] = Counter()
    session = boto3.Session(region_name=REGION)

    def count(model: Any = None, **_: Any) -> None:
        if model is not None:
            calls[f"{model.service_model.service_name}.{model.name}"] += 1

    session.events.register("before-call", count)
    return session, calls


def populate(args: argparse.Namespace) -> dict[str, int]:
    import boto3

    rng = random.Random(args.seed)
    iam, ec2, s3 = boto3.client("iam"), boto3.client("ec2"), boto3.client("s3")
    truth: Counter[str] = Counter()
    for i in range(10):
        doc = ADMIN if i < 3 else NARROW
        iam.create_policy(PolicyName=f"managed-{i}", PolicyDocument=json.dumps(doc))
    truth["star_policies"] += 3
    for i in range(args.users):
        name = f"user-{i:05d}"
        iam.create_user(UserName=name)
        if rng.random() < 0.4:
            iam.create_login_profile(UserName=name, Password="Sup3r-secret!")
            if rng.random() < 1 / 3:
                serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
                iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                                      AuthenticationCode2="654321")  # fmt: skip
            else:
                truth["console_without_mfa"] += 1
        if rng.random() < 0.6:
            iam.create_access_key(UserName=name)
        if rng.random() < 0.05:
            star = rng.random() < 0.2
            doc = json.dumps(ADMIN if star else NARROW)
            iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=doc)
            truth["star_policies"] += int(star)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    for i in range(args.groups):
        gid = ec2.create_security_group(GroupName=f"sg-{i:04d}", Description="bench", VpcId=vpc)["GroupId"]
        r = rng.random()
        if r < 0.3:
            cidr, port = "0.0.0.0/0", 22
            truth["open_groups"] += 1
        elif r < 0.4:
            cidr, port = "0.0.0.0/0", 443
        else:
            cidr, port = "10.0.0.0/8", 22
        perm = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    for i in range(args.buckets):
        name = f"bench-bucket-{i:04d}"
        s3.create_bucket(Bucket=name)
        r = rng.random()
        if r < 0.10:
            s3.put_bucket_acl(Bucket=name, ACL="public-read")
            truth["public_buckets"] += 1
        elif r < 0.15:
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                      "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*"}]}  # fmt: skip
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
            truth["public_buckets"] += 1
    return dict(truth)


def plugin_audit() -> tuple[float, Counter[str], dict[str, int], int]:
    from plugins.auditing import load_checks, run_checks
    from plugins.auditing.providers import AwsApi, close_api

    session, _ = counting_session()
    t0 = time.perf_counter()
    api = AwsApi(session, regions=[REGION])
    registry = load_checks()
    findings = run_checks(api, api.account_id(), registry.select("aws"), registry.thresholds({}),
                          dt.datetime.now(dt.UTC))  # fmt: skip
    elapsed = time.perf_counter() - t0
    close_api(api)
    fails = Counter(f.check_id for f in findings if f.status == "FAIL")
    errors = sum(1 for f in findings if f.status == "ERROR")
    answers = {
        "console_without_mfa": fails["aws.iam.console_user_without_mfa"],
        "star_policies": fails["aws.iam.policy_admin_star"],
        "open_groups": fails["aws.ec2.security_group_open_ingress"],
        "public_buckets": fails["aws.s3.bucket_public"],
    }
    return elapsed, api.calls, answers, errors


def _star(doc: Any) -> bool:
    from plugins.auditing.checks.aws.common import admin_statements
    from plugins.auditing.providers.aws import policy_json

    return any(admin_statements(policy_json(doc)))


def naive_audit() -> tuple[float, Counter[str], dict[str, int]]:
    """One question per resource: the way a script written against the console's mental model works."""
    session, calls = counting_session()
    t0 = time.perf_counter()
    iam, ec2, s3 = session.client("iam"), session.client("ec2"), session.client("s3")
    answers: Counter[str] = Counter()
    users = [u for page in iam.get_paginator("list_users").paginate() for u in page["Users"]]
    for u in users:
        name = u["UserName"]
        try:
            iam.get_login_profile(UserName=name)
            console = True
        except iam.exceptions.NoSuchEntityException:
            console = False
        mfa = iam.list_mfa_devices(UserName=name)["MFADevices"]
        answers["console_without_mfa"] += int(console and not mfa)
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
        for pname in iam.list_user_policies(UserName=name)["PolicyNames"]:
            doc = iam.get_user_policy(UserName=name, PolicyName=pname)["PolicyDocument"]
            answers["star_policies"] += int(_star(doc))
        iam.list_attached_user_policies(UserName=name)
    for p in iam.list_policies(Scope="Local")["Policies"]:
        doc = iam.get_policy_version(PolicyArn=p["Arn"], VersionId=p["DefaultVersionId"])["PolicyVersion"]["Document"]
        answers["star_policies"] += int(_star(doc))
    ids = [g["GroupId"] for page in ec2.get_paginator("describe_security_groups").paginate()
           for g in page["SecurityGroups"]]  # fmt: skip
    for gid in ids:
        [g] = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        open_ = any(r.get("CidrIp") == "0.0.0.0/0" and (p.get("FromPort") not in (80, 443))
                    for p in g["IpPermissions"] for r in p.get("IpRanges", []))  # fmt: skip
        answers["open_groups"] += int(open_)
    for b in s3.list_buckets()["Buckets"]:
        name = b["Name"]
        s3.get_bucket_location(Bucket=name)
        grants = s3.get_bucket_acl(Bucket=name)["Grants"]
        public = any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)
        try:
            policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
            public = public or any(st.get("Principal") == "*" for st in policy["Statement"])
        except s3.exceptions.ClientError:
            pass
        with contextlib.suppress(s3.exceptions.ClientError):
            s3.get_public_access_block(Bucket=name)
        answers["public_buckets"] += int(public)
    return time.perf_counter() - t0, calls, dict(answers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--buckets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, help="also write the table as markdown here")
    args = ap.parse_args()

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION)  # fmt: skip
    try:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        truth = populate(args)
        built = time.perf_counter() - t0
        p_time, p_calls, p_answers, p_errors = plugin_audit()
        n_time, n_calls, n_answers = naive_audit()
        load_after = os.getloadavg()
    finally:
        server.stop()

    lines = [
        f"account: {args.users:,} IAM users, {args.groups:,} security groups, {args.buckets:,} buckets "
        f"(seed {args.seed}), built in moto in {built:.1f} s",
        f"planted failures: {truth}",
        f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in load_after)} (2 shared cores)",
        "",
        f"{'audit':36} {'time s':>8} {'API calls':>10}  failures (console w/o MFA, * on *, open SG, public bucket)",
        f"{'plugin (all 9 AWS checks)':36} {p_time:8.2f} {sum(p_calls.values()):10,}  "
        f"{[p_answers[k] for k in ('console_without_mfa', 'star_policies', 'open_groups', 'public_buckets')]}",
        f"{'naive: each API once per resource':36} {n_time:8.2f} {sum(n_calls.values()):10,}  "
        f"{[n_answers.get(k, 0) for k in ('console_without_mfa', 'star_policies', 'open_groups', 'public_buckets')]}",
        "",
        f"agree with the planted truth: plugin {all(p_answers[k] == v for k, v in truth.items())}, "
        f"naive {all(n_answers.get(k, 0) == v for k, v in truth.items())}; plugin checks in ERROR: {p_errors}",
        f"plugin calls: {dict(sorted(p_calls.items()))}",
        f"naive calls: {dict(sorted(n_calls.items()))}",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        cmd = "`.venv/bin/python benchmarks/bench_auditing.py`" + (
            "" if (args.users, args.groups, args.buckets) == (1000, 500, 200) else
            f" --users {args.users} --groups {args.groups} --buckets {args.buckets}"
        )  # fmt: skip
        title = f"# Auditing benchmark ({dt.date.today().isoformat()}, 2 cores)"
        args.out.write_text(f"{title}\n\n{cmd}\n\n```\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
