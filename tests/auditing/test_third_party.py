"""A check the plugin does not ship, added by a third party under the entry-point group
``couchpotato.auditing.checks`` (an installed distribution's entry_points.txt), runs like the built-in
ones from the command line; a broken one fails the run in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[2]

CHECK_MODULE = """
from plugins.auditing import Check, CheckMeta, Result

def evaluate(ctx):
    users = [r for r in ctx.api.credential_report() if r["user"] != "<root_account>"]
    limit = int(ctx.threshold("max_users"))
    status = "FAIL" if len(users) > limit else "PASS"
    yield Result(status, ctx.account, f"{len(users)} IAM users (at most {limit})")

CHECK = Check(CheckMeta(id="aws.acme.iam_user_count", title="Too many IAM users", severity="low", provider="aws",
                        resource_type="AwsAccount", risk="Sprawl.", remediation="Use SSO.",
                        thresholds={"max_users": 10}), evaluate)
BROKEN = "not a check"
"""


def install(where: Path, entry: str) -> None:
    """A distribution on the path: its module and its dist-info with the entry point."""
    (where / "acme_checks").mkdir(parents=True, exist_ok=True)
    (where / "acme_checks" / "__init__.py").write_text(CHECK_MODULE)
    info = where / "acme_checks-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[couchpotato.auditing.checks]\nuser_count = {entry}\n")


def katopotato(cwd: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env["COUCHPOTATO_DATA_DIR"] = str(cwd / "data")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{site}"
    return subprocess.run(
        [sys.executable, "-m", "katopotato.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=100
    )


def test_a_third_party_check_runs_through_its_entry_point(aws: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "acme_checks:CHECK")
    iam = boto3.client("iam")
    for name in ("a", "b", "c"):
        iam.create_user(UserName=name)
    listed = katopotato(tmp_path, site, "jobs", "run", "auditing.checks", "--no-progress", "--json")
    assert listed.returncode == 0, listed.stderr
    meta = {c["id"]: c for c in json.loads(listed.stdout)}
    acme = meta["aws.acme.iam_user_count"]
    assert acme["builtin"] is False and acme["thresholds"] == {"max_users": 10} and acme["severity"] == "low"
    assert meta["aws.iam.console_user_without_mfa"]["builtin"] is True
    params = json.dumps({"thresholds": {"aws.acme.iam_user_count": {"max_users": 2}}})
    done = katopotato(
        tmp_path,
        site,
        "jobs",
        "run",
        "auditing.run",
        "--provider",
        "aws",
        "--region",
        "us-east-1",
        "--check",
        "aws.acme.*",
        "--params",
        params,
        "--output",
        "f.json",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    [finding] = json.loads((tmp_path / "f.json").read_text())
    assert finding["check_id"] == "aws.acme.iam_user_count" and finding["status"] == "FAIL"
    assert finding["message"] == "3 IAM users (at most 2)" and finding["remediation"] == "Use SSO."
    bad = json.dumps({"thresholds": {"aws.acme.iam_user_count": {"max_user": 2}}})
    refused = katopotato(tmp_path, site, "jobs", "run", "auditing.run", "--provider", "aws", "--params", bad)
    assert refused.returncode == 1 and "check aws.acme.iam_user_count has no threshold max_user" in refused.stderr


def test_a_broken_third_party_entry_point_fails_in_one_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "acme_checks:BROKEN")
    done = katopotato(tmp_path, site, "jobs", "run", "auditing.run", "--provider", "aws", "--no-progress")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "check entry point user_count (acme_checks:BROKEN) is not a Check" in done.stderr.strip().splitlines()[-1]
