"""``katopotato jobs run auditing.run --provider aws [--mutelist FILE] --output findings.json
[--format csv|html]`` as a user runs it: a subprocess, boto3 reaching moto through AWS_ENDPOINT_URL,
the state kept in the data dir's blob store between runs."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import ACCOUNT

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    "check_id",
    "status",
    "severity",
    "provider",
    "resource_id",
    "region",
    "message",
    "remediation",
    "first_seen",
    "last_seen",
}


def katopotato(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env["COUCHPOTATO_DATA_DIR"] = str(cwd / "data")
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "katopotato.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=150
    )


def run_audit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return katopotato(
        cwd, "jobs", "run", "auditing.run", "--provider", "aws", "--region", "us-east-1", "--no-progress", *args
    )


def findings(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    items = json.loads(path.read_text())
    assert isinstance(items, list) and items
    for item in items:
        assert set(item) >= REQUIRED, REQUIRED - set(item)
    return {(f["check_id"], re.split(r"[/:]", f["resource_id"])[-1]): f for f in items}


def test_runs_from_the_command_line_with_a_mute_list_and_keeps_first_seen(aws: str, tmp_path: Path) -> None:
    iam = boto3.client("iam")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Sup3r-secret!")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="www-assets")
    s3.put_bucket_acl(Bucket="www-assets", ACL="public-read")
    s3.create_bucket(Bucket="leaky")
    s3.put_bucket_acl(Bucket="leaky", ACL="public-read")
    mutes = tmp_path / "mutes.yaml"
    mutes.write_text(
        "mutes:\n"
        "  - check: aws.s3.bucket_public\n"
        "    resource: 'arn:aws:s3:::www-*'\n"
        "    expires: 2999-12-31\n"
        "    reason: the public website's assets\n"
        "    who: alice@example.org\n"
    )
    first = run_audit(tmp_path, "--mutelist", str(mutes), "--output", "findings.json")
    assert first.returncode == 0, first.stderr
    assert "wrote findings.json" in first.stderr
    one = findings(tmp_path / "findings.json")
    assert one[("aws.iam.console_user_without_mfa", "alice")]["status"] == "FAIL"
    assert one[("aws.s3.bucket_public", "leaky")]["status"] == "FAIL"
    muted = one[("aws.s3.bucket_public", "www-assets")]
    assert muted["status"] == "MUTED" and muted["muted_reason"] == "the public website's assets"
    assert one[("aws.iam.root_access_keys", "root")]["status"] == "PASS"
    assert all(f["provider"] == "aws" and f["account"] == ACCOUNT for f in one.values())
    assert one[("aws.s3.bucket_public", "leaky")]["new"] is True
    assert "new                  " in first.stdout

    # fixed in between: the bucket is no longer public; the second run keeps first_seen of what still fails
    s3.put_bucket_acl(Bucket="leaky", ACL="private")
    second = run_audit(tmp_path, "--mutelist", str(mutes), "--output", "again.json", "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert summary["new"] == 0 and summary["fixed"] == 1
    assert summary["fixed_findings"][0]["resource_id"] == "arn:aws:s3:::leaky"
    # what the console's job view shows: every open failure, since when and for how long, new or not
    listed = {(o["check_id"], o["resource_id"]): o for o in summary["open_failures"]}
    console = listed[("aws.iam.console_user_without_mfa", f"arn:aws:iam::{ACCOUNT}:user/alice")]
    assert console["new"] is False and console["open_days"] == 0 and console["severity"] == "high"
    assert console["first_seen"] == one[("aws.iam.console_user_without_mfa", "alice")]["first_seen"]
    two = findings(tmp_path / "again.json")
    alice = two[("aws.iam.console_user_without_mfa", "alice")]
    assert alice["first_seen"] == one[("aws.iam.console_user_without_mfa", "alice")]["first_seen"]
    assert alice["last_seen"] >= alice["first_seen"] and alice["new"] is False
    assert two[("aws.s3.bucket_public", "leaky")]["status"] == "PASS"


@pytest.mark.parametrize("fmt", ["csv", "html"])
def test_csv_and_html_outputs(aws: str, tmp_path: Path, fmt: str) -> None:
    boto3.client("iam").create_user(UserName="bob")
    done = run_audit(tmp_path, "--format", fmt, "--output", f"report.{fmt}", "--check", "aws.iam.*")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / f"report.{fmt}").read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert {r["check_id"] for r in rows} >= {"aws.iam.root_mfa_disabled", "aws.iam.console_user_without_mfa"}
        assert all(r["check_id"].startswith("aws.iam.") for r in rows)
        assert {"status", "severity", "first_seen", "open_days"} <= set(rows[0])
    else:
        assert text.startswith("<!doctype html>") and "aws.iam.root_mfa_disabled" in text and "Audit report" in text


def test_bad_input_is_one_line(aws: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mutes:\n  - check: aws.s3.bucket_public\n    reason: no who\n")
    done = run_audit(tmp_path, "--mutelist", str(bad), "--output", "f.json")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith("katopotato: error: job ") and "mute 1: who: Field required" in line
    assert "Traceback" not in done.stderr
    unknown = katopotato(tmp_path, "jobs", "run", "auditing.run", "--provider", "azure", "--no-progress")
    assert unknown.returncode == 1 and "unknown provider 'azure'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    fmt = run_audit(tmp_path, "--format", "pdf")
    assert fmt.returncode == 1 and "bad parameters for auditing.run: format" in fmt.stderr


def test_help_lists_the_parameters(tmp_path: Path) -> None:
    done = katopotato(tmp_path, "jobs", "run", "auditing.run", "--help")
    assert done.returncode == 0
    for option in ("--provider VALUE", "--mutelist VALUE", "--format VALUE", "--output PATH", "--region VALUE"):
        assert option in done.stdout
