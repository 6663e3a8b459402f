"""Google Workspace checks through google-api-python-client and GitHub checks through PyGithub, each
against a local stand-in over HTTP, with passing and failing fixtures; an API that refuses is an
ERROR finding."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from plugins.auditing import Finding, load_checks, run_checks
from plugins.auditing.providers import ProviderOptions, close_api, open_api

from .fakes import FakeGitHub, FakeSlack, FakeWorkspace

pytestmark = pytest.mark.timeout(120)
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
ADMIN = "root@example.org"
NEVER = "1970-01-01T00:00:00.000Z"


def user(
    email: str,
    *,
    enrolled: bool = True,
    admin: bool = False,
    delegated: bool = False,
    suspended: bool = False,
    last: str = "2026-05-30T10:00:00.000Z",
    created: str = "2020-01-01T00:00:00.000Z",
) -> dict[str, object]:
    return {
        "primaryEmail": email,
        "isEnrolledIn2Sv": enrolled,
        "isAdmin": admin,
        "isDelegatedAdmin": delegated,
        "suspended": suspended,
        "lastLoginTime": last,
        "creationTime": created,
    }


def audit(provider: str, options: ProviderOptions, pattern: str) -> dict[str, Finding]:
    registry = load_checks()
    api, account = open_api(provider, options)
    checks = registry.select(provider, [pattern])
    try:
        findings = run_checks(api, account, checks, registry.thresholds({}), NOW)
    finally:
        close_api(api)
    return {f"{f.check_id.rsplit('.', 1)[1]}:{f.resource_id}": f for f in findings}


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[FakeWorkspace, ProviderOptions]:
    users = [
        user(ADMIN, admin=True),
        user("boss@example.org", admin=True, enrolled=False),
        user("ann@example.org"),
        user("ben@example.org", enrolled=False, last="2026-03-01T00:00:00.000Z"),
        user("new@example.org", last=NEVER, created="2026-05-20T00:00:00.000Z"),
        user("ghost@example.org", last=NEVER, created="2025-01-01T00:00:00.000Z"),
        user("leaver@example.org", suspended=True, admin=True, enrolled=False, last=NEVER),
        user("gone@example.org", suspended=True, enrolled=False),
    ]
    with FakeWorkspace(ADMIN, users, page_size=3) as fake:
        options = ProviderOptions(
            google_credentials=str(fake.service_account_file(tmp_path)),
            google_admin_email=ADMIN,
            google_endpoint=fake.url + "/",
        )
        yield fake, options


def test_workspace_checks(workspace: tuple[FakeWorkspace, ProviderOptions]) -> None:
    fake, options = workspace
    found = audit("google", options, "google.*")
    status = {k: f.status for k, f in found.items()}
    assert status["user_without_2sv:ann@example.org"] == "PASS"
    assert status["user_without_2sv:ben@example.org"] == "FAIL"
    assert "user_without_2sv:leaver@example.org" not in status  # suspended users are another check's business
    assert status["super_admin_without_2sv:boss@example.org"] == "FAIL"
    assert status[f"super_admin_without_2sv:{ADMIN}"] == "PASS"
    assert found["super_admin_without_2sv:boss@example.org"].severity == "critical"
    assert status["user_inactive:ann@example.org"] == "PASS"
    assert status["user_inactive:ben@example.org"] == "FAIL"  # 92 days
    assert status["user_inactive:new@example.org"] == "PASS"  # never signed in, created 12 days ago
    ghost = found["user_inactive:ghost@example.org"]
    assert ghost.status == "FAIL" and "never signed in (created 516 days ago)" in ghost.message
    assert status["suspended_admin:leaver@example.org"] == "FAIL"
    assert status["suspended_admin:gone@example.org"] == "PASS"
    assert found["user_without_2sv:ben@example.org"].owner == "ben@example.org"
    assert all(f.account == "example.org" for f in found.values())
    assert fake.requests["users.list"] == 3  # 8 users, 3 a page, read once for the four checks


def test_workspace_refusal_is_an_error(workspace: tuple[FakeWorkspace, ProviderOptions]) -> None:
    _fake, options = workspace
    not_admin = ProviderOptions(
        google_credentials=options.google_credentials,
        google_admin_email="ann@example.org",
        google_endpoint=options.google_endpoint,
    )
    found = audit("google", not_admin, "google.directory.user_without_2sv")
    [error] = found.values()
    assert error.status == "ERROR" and "Not Authorized to access this resource/api" in error.message


def github(**kw: object) -> FakeGitHub:
    args: dict[str, object] = {
        "two_factor_required": False,
        "members": {"alice": True, "bob": False, "carol": True},
        "outside": {"api": {"vendor": "admin", "intern": "push"}, "web": {"vendor": "pull"}, "docs": {}},
    }
    args.update(kw)
    return FakeGitHub("acme", "ghp_testtoken", **args)  # type: ignore[arg-type]


def test_github_checks() -> None:
    with github() as fake:
        options = ProviderOptions(account="acme", github_token="ghp_testtoken", github_api_url=fake.url)
        found = audit("github", options, "github.*")
    status = {k: f.status for k, f in found.items()}
    assert status == {
        "two_factor_not_required:acme": "FAIL",
        "member_without_2fa:acme/alice": "PASS",
        "member_without_2fa:acme/bob": "FAIL",
        "member_without_2fa:acme/carol": "PASS",
        "outside_collaborator_admin:acme/api/intern": "PASS",
        "outside_collaborator_admin:acme/api/vendor": "FAIL",
        "outside_collaborator_admin:acme/web/vendor": "PASS",
    }
    with github(two_factor_required=True, members={"alice": True}, outside={"api": {"vendor": "push"}}) as fake:
        options = ProviderOptions(account="acme", github_token="ghp_testtoken", github_api_url=fake.url)
        assert {f.status for f in audit("github", options, "github.*").values()} == {"PASS"}


def test_github_without_owner_rights_is_an_error_not_a_pass() -> None:
    with github(two_factor_required=None) as fake:
        options = ProviderOptions(account="acme", github_token="ghp_testtoken", github_api_url=fake.url)
        found = audit("github", options, "github.org.*")
        bad = audit(
            "github",
            ProviderOptions(account="acme", github_token="wrong", github_api_url=fake.url),
            "github.org.two_factor_not_required",
        )
    assert found["two_factor_not_required:acme"].status == "ERROR"
    assert "needs an owner's token" in found["two_factor_not_required:acme"].message
    assert found["member_without_2fa:acme"].status == "ERROR" and "Must be an organization owner" in (
        found["member_without_2fa:acme"].message
    )
    [refused] = bad.values()
    assert refused.status == "ERROR" and "Bad credentials" in refused.message


def test_google_and_github_from_the_command_line(
    workspace: tuple[FakeWorkspace, ProviderOptions], tmp_path: Path
) -> None:
    from .test_cli import katopotato

    _fake, options = workspace
    google = katopotato(
        tmp_path,
        "jobs",
        "run",
        "auditing.run",
        "--provider",
        "google",
        "--output",
        "g.json",
        "--no-progress",
        "--setting",
        f"auditing.google_credentials={options.google_credentials}",
        "--setting",
        f"auditing.google_admin_email={ADMIN}",
        "--setting",
        f"auditing.google_endpoint={options.google_endpoint}",
    )
    assert google.returncode == 0, google.stderr
    found = {(f["check_id"], f["resource_id"]): f for f in json.loads((tmp_path / "g.json").read_text())}
    assert found[("google.directory.super_admin_without_2sv", "boss@example.org")]["status"] == "FAIL"
    assert all(f["provider"] == "google" and f["account"] == "example.org" for f in found.values())
    with github() as fake:
        gh = katopotato(
            tmp_path,
            "jobs",
            "run",
            "auditing.run",
            "--provider",
            "github",
            "--account",
            "acme",
            "--output",
            "gh.csv",
            "--format",
            "csv",
            "--no-progress",
            "--setting",
            "auditing.github_token=ghp_testtoken",
            "--setting",
            f"auditing.github_api_url={fake.url}",
        )
    assert gh.returncode == 0, gh.stderr
    rows = list(csv.DictReader((tmp_path / "gh.csv").read_text().splitlines()))
    assert ("github.org.member_without_2fa", "acme/bob", "FAIL") in {
        (r["check_id"], r["resource_id"], r["status"]) for r in rows
    }
    no_org = katopotato(
        tmp_path, "jobs", "run", "auditing.run", "--provider", "github", "--output", "x.json", "--no-progress", "--json"
    )
    assert no_org.returncode == 0, no_org.stderr  # every check an ERROR with the reason, never a silent pass
    errors = json.loads(no_org.stdout)["errors"]
    assert len(errors) == 3 and all("needs the organisation: pass --account ORG" in e for e in errors)


def slack_member(uid: str, has_2fa: bool | None, **extra: object) -> dict[str, object]:
    member: dict[str, object] = {"id": uid, "name": uid.lower(), "profile": {"email": f"{uid.lower()}@example.org"}}
    if has_2fa is not None:
        member["has_2fa"] = has_2fa
    return {**member, **extra}


def test_slack_members_without_2fa() -> None:
    members = [
        slack_member("U1", True),
        slack_member("U2", False),
        slack_member("U3", False, deleted=True),
        slack_member("B1", False, is_bot=True),
        slack_member("U4", True),
    ]
    with FakeSlack("xoxb-test", members) as fake:
        options = ProviderOptions(slack_token="xoxb-test", slack_api_url=fake.url + "/api/")
        found = audit("slack", options, "slack.*")
        assert fake.requests["users.list"] == 3  # cursor-paged, read once
    assert {k: f.status for k, f in found.items()} == {
        "member_without_2fa:T0ACME/U1": "PASS",
        "member_without_2fa:T0ACME/U2": "FAIL",
        "member_without_2fa:T0ACME/U4": "PASS",
    }
    assert found["member_without_2fa:T0ACME/U2"].owner == "u2@example.org"


def test_slack_plan_without_2fa_field_is_an_error() -> None:
    with FakeSlack("xoxb-test", [slack_member("U1", None), slack_member("U2", None)]) as fake:
        found = audit("slack", ProviderOptions(slack_token="xoxb-test", slack_api_url=fake.url + "/api/"), "slack.*")
        [error] = found.values()
        assert error.status == "ERROR" and "does not show has_2fa" in error.message
        with pytest.raises(Exception, match="invalid_auth"):
            open_api("slack", ProviderOptions(slack_token="xoxb-wrong", slack_api_url=fake.url + "/api/"))
