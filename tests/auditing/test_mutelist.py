"""The mute list: resource patterns, tags, expiry (an expired mute stops applying), and invalid files
that fail loudly with one line naming the file and the entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from plugins.auditing import Finding, Mutelist
from plugins.auditing.errors import MutelistError

TODAY = dt.date(2026, 6, 1)


def finding(
    resource: str,
    *,
    check: str = "aws.s3.bucket_public",
    tags: dict[str, str] | None = None,
    status: str = "FAIL",
    account: str = "111122223333",
    region: str = "us-east-1",
) -> Finding:
    return Finding(
        check,
        status,
        "high",
        "aws",
        account,
        resource,
        "AwsS3Bucket",
        region,
        "m",
        "t",
        "r",
        "fix",
        "",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T00:00:00+00:00",
        tags=tags or {},
    )


def mutes(text: str) -> Mutelist:
    return Mutelist.parse(text, "mutes.yaml")


def test_resource_pattern_and_check_glob() -> None:
    ml = mutes("""
mutes:
  - check: aws.s3.*
    resource: "arn:aws:s3:::www-*"
    reason: public website
    who: alice@example.org
""")
    www, data = finding("arn:aws:s3:::www-assets"), finding("arn:aws:s3:::data")
    other_check = finding("arn:aws:s3:::www-assets", check="aws.iam.credentials_unused")
    assert ml.apply([www, data, other_check], TODAY) == 1
    assert www.status == "MUTED" and www.muted_reason == "public website" and www.muted_by == "alice@example.org"
    assert data.status == "FAIL" and other_check.status == "FAIL"


def test_tags_account_and_region() -> None:
    ml = mutes("""
- account: 111122223333
  region: eu-*
  tags: {env: "dev*", team: web}
  reason: dev sandboxes
  who: bob
""")
    hit = finding("a", tags={"env": "dev-3", "team": "web", "x": "y"}, region="eu-west-1")
    wrong_tag = finding("b", tags={"env": "prod", "team": "web"}, region="eu-west-1")
    missing_tag = finding("c", tags={"env": "dev"}, region="eu-west-1")
    wrong_region = finding("d", tags={"env": "dev", "team": "web"})
    wrong_account = finding("e", tags={"env": "dev", "team": "web"}, region="eu-west-1", account="999")
    assert ml.apply([hit, wrong_tag, missing_tag, wrong_region, wrong_account], TODAY) == 1
    assert hit.status == "MUTED"


def test_expired_mutes_stop_applying() -> None:
    ml = mutes("""
- {resource: "r1", expires: 2026-06-01, reason: until the migration, who: carol}
- {resource: "r2", expires: 2026-05-31, reason: was until May, who: carol}
""")
    r1, r2 = finding("r1"), finding("r2")
    assert ml.apply([r1, r2], TODAY) == 1
    assert r1.status == "MUTED" and r2.status == "FAIL"  # the last day still applies, the day after not
    assert [m.resource for m in ml.expired(TODAY)] == ["r2"]


def test_passes_and_errors_are_never_muted() -> None:
    ml = mutes("- {reason: everything, who: root}")
    ok, err = finding("a", status="PASS"), finding("b", status="ERROR")
    assert ml.apply([ok, err], TODAY) == 0 and ok.status == "PASS" and err.status == "ERROR"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("mutes: [ {reason: x", "mutes.yaml is not valid YAML"),
        ("- {check: aws.s3.bucket_public, who: bob}", "mutes.yaml: mute 1: reason: Field required"),
        ("- {reason: r, who: w, expires: someday}", "mutes.yaml: mute 1: expires: Input should be a valid date"),
        ("- {reason: r, who: w, resourse: x}", "mutes.yaml: mute 1: resourse: Extra inputs are not permitted"),
        ("- {reason: r, who: w}\n- just a string", "mutes.yaml: mute 2 is not a mapping"),
        ("muted: []", "mutes.yaml: unknown top-level key(s) muted"),
        ("42", "mutes.yaml: expected a list of mutes"),
        ("- {reason: '  ', who: w}", "mutes.yaml: mute 1: reason: Value error, must not be empty"),
    ],
)
def test_an_invalid_mute_list_fails_loudly(text: str, error: str) -> None:
    with pytest.raises(MutelistError) as e:
        mutes(text)
    assert str(e.value).startswith(error) and "\n" not in str(e.value)


def test_a_missing_file_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(MutelistError, match=r"cannot read the mute list .*nope\.yaml"):
        Mutelist.load(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert Mutelist.load(tmp_path / "empty.yaml").mutes == []
