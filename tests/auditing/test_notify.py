"""Notifications as a deployment gets them, from ``katopotato jobs run auditing.run`` in a subprocess:
one Slack message per run, PagerDuty Events v2 with dedup keys (a standing failure is not paged twice,
a fixed one is resolved), e-mail to the resource's owner (aiosmtpd), metrics pushed to a Pushgateway;
all receivers on loopback."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest

from plugins.auditing.notify import dedup_key, summary_message, to_page
from plugins.auditing.records import Finding, finding_key

from .conftest import ACCOUNT, Inbox, Receiver
from .test_cli import run_audit

pytestmark = pytest.mark.timeout(180)


def settings(receiver: Receiver, smtp_port: int) -> list[str]:
    values = {
        "slack_webhook_url": f"{receiver.url}/slack/T000/B000/XXXX",
        "pagerduty_routing_key": "R0UT1NGKEY",
        "pagerduty_url": f"{receiver.url}/pagerduty/v2/enqueue",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp_port),
        "pushgateway_url": f"{receiver.url}/pushgateway",
    }
    return [arg for k, v in values.items() for arg in ("--setting", f"auditing.{k}={v}")]


def posted(receiver: Receiver, prefix: str) -> list[dict[str, object]]:
    return [json.loads(b) for p, b in zip(receiver.paths, receiver.bodies, strict=True) if p.startswith(prefix)]


def test_slack_pagerduty_mail_and_metrics_across_runs(
    aws: str, tmp_path: Path, receiver: Receiver, smtp_server: tuple[int, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, inbox = smtp_server
    iam = boto3.client("iam")
    iam.create_user(UserName="alice", Tags=[{"Key": "owner", "Value": "alice@example.org"}])
    iam.create_login_profile(UserName="alice", Password="Sup3r-secret!")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="leaky")
    s3.put_bucket_acl(Bucket="leaky", ACL="public-read")
    args = (
        "--check",
        "aws.iam.console_user_without_mfa",
        "--check",
        "aws.iam.root_mfa_disabled",
        "--check",
        "aws.s3.bucket_public",
        *settings(receiver, port),
    )

    first = run_audit(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    [slack] = posted(receiver, "POST /slack/")
    assert slack["text"] == f"Audit of aws:{ACCOUNT}: 3 new failure(s) (2 critical, 1 high), 0 fixed"
    triggers = posted(receiver, "POST /pagerduty/")
    assert sorted(str(t["payload"]["class"]) for t in triggers) == [  # type: ignore[index]
        "aws.iam.root_mfa_disabled",
        "aws.s3.bucket_public",
    ]  # the critical ones
    assert all(t["event_action"] == "trigger" and t["routing_key"] == "R0UT1NGKEY" for t in triggers)
    bucket_key = dedup_key(finding_key("aws.s3.bucket_public", ACCOUNT, "us-east-1", "arn:aws:s3:::leaky"))
    assert bucket_key in {t["dedup_key"] for t in triggers}
    [(to, mail)] = inbox.messages
    body = str(mail.get_payload(decode=True), "utf-8")
    assert to == ["alice@example.org"] and "user alice has a console password and no MFA" in body
    [push] = [p for p in receiver.paths if "/pushgateway/" in p]
    assert push.startswith("PUT /pushgateway/metrics/job/couchpotato_auditing/")
    metrics = receiver.bodies[receiver.paths.index(push)].decode()
    assert 'couchpotato_audit_findings{account="123456789012",check_id="aws.s3.bucket_public"' in metrics

    # a standing failure: no Slack message (nothing new), no page, no mail
    second = run_audit(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert len(posted(receiver, "POST /slack/")) == 1 and len(posted(receiver, "POST /pagerduty/")) == 2
    assert len(inbox.messages) == 1

    # IAM unreachable: its checks are ERRORs (said once on Slack); what they had found is kept, not resolved
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    third = run_audit(tmp_path, *args)
    assert third.returncode == 0, third.stderr
    assert posted(receiver, "POST /slack/")[-1]["text"] == (
        f"Audit of aws:{ACCOUNT}: 0 new failure(s), 0 fixed, 2 check(s) could not run"
    )
    assert len(posted(receiver, "POST /pagerduty/")) == 2

    # fixed: PagerDuty hears a resolve with the same dedup key; Slack says one was fixed, not the same errors again
    s3.put_bucket_acl(Bucket="leaky", ACL="private")
    fourth = run_audit(tmp_path, *args)
    assert fourth.returncode == 0, fourth.stderr
    resolve = posted(receiver, "POST /pagerduty/")[2:]
    assert resolve == [{"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": bucket_key}]
    assert posted(receiver, "POST /slack/")[-1]["text"] == f"Audit of aws:{ACCOUNT}: 0 new failure(s), 1 fixed"
    assert len(posted(receiver, "POST /slack/")) == 3


def test_a_channel_that_is_down_fails_the_try_and_is_recorded_on_the_last(
    aws: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail = True
    done = run_audit(
        tmp_path,
        "--check",
        "aws.iam.root_mfa_disabled",
        "--json",
        "--setting",
        f"auditing.slack_webhook_url={receiver.url}/slack/x",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["notified"]["failed"] == ["slack: the Slack webhook answered 500: receiver down"]
    assert len(receiver.paths) == 2  # the first try and the retry (max_tries 2)


def _finding(check: str, severity: str, n: int = 0) -> Finding:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Finding(
        check,
        "FAIL",
        severity,
        "aws",
        ACCOUNT,
        f"arn:r/{n}",
        "T",
        "us-east-1",
        f"msg {n}",
        "title",
        "risk",
        "fix",
        "",
        now,
        now,
        new=True,
    )


def test_paging_threshold() -> None:
    highs = [_finding("aws.x.y", "high", n) for n in range(3)]
    assert to_page(highs, "critical", 5) == []  # three highs do not cross "more than 5"
    assert len(to_page(highs, "critical", 2)) == 3
    assert [f.severity for f in to_page([*highs, _finding("aws.x.z", "critical")], "critical", 5)] == ["critical"]
    assert len(to_page(highs, "high", 5)) == 3


def test_slack_message_lists_a_few_per_severity() -> None:
    items = [_finding("aws.x.y", "medium", n) for n in range(8)]
    msg = summary_message(items, 2, [], accounts=["aws:1"], report_url="https://console/x")
    assert msg["text"] == "Audit of aws:1: 8 new failure(s) (8 medium), 2 fixed"
    section = msg["blocks"][1]["text"]["text"]
    assert section.startswith("*medium* (8)") and "… and 3 more" in section
    assert msg["blocks"][-1]["elements"][0]["text"] == "<https://console/x|full report>"


def test_owner_mail_through_ses(aws: str) -> None:
    """The SES transport (boto3, moto's SES over HTTP): one message per owner, none for unknown owners."""
    import boto3

    from plugins.auditing.errors import NotifyError
    from plugins.auditing.notify import MailOptions, owner_messages, send_messages

    ses = boto3.client("ses")
    ses.verify_email_identity(EmailAddress="audit@example.org")
    mine = [_finding("aws.x.y", "high", n) for n in range(2)]
    for f in mine:
        f.owner = "dana@example.org"
    options = MailOptions(sender="audit@example.org", transport="ses")
    messages = owner_messages([*mine, _finding("aws.x.z", "high", 9)], options)
    assert [m["To"] for m in messages] == ["dana@example.org"]
    assert send_messages(options, messages) == 1
    assert ses.get_send_quota()["SentLast24Hours"] > 0  # moto counts the Destinations and the To header
    unverified = MailOptions(sender="nobody@elsewhere.org", transport="ses")
    with pytest.raises(NotifyError, match=r"cannot send owner e-mail through SES: .*MessageRejected"):
        send_messages(unverified, messages)
