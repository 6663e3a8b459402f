"""The findings and mutes routes (``/v1/plugins/auditing/``) on a real service whose embedded worker
ran ``auditing.run`` against moto: filters, scopes, and a mute made through the API that the next run
applies (and that unmuting lifts)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.plugin_service import start_service

from .conftest import ACCOUNT

pytestmark = pytest.mark.timeout(120)
FINDINGS = "/v1/plugins/auditing/findings"
MUTES = "/v1/plugins/auditing/mutes"
PARAMS = {"provider": "aws", "checks": ["aws.s3.*"], "notify": False}
SETTINGS = {"auditing": {"aws_regions": ["us-east-1"]}}
BLOCK = "aws.s3.account_public_access_block"


async def test_findings_filters_mute_and_unmute(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    async with start_service(tmp_path, ["plugins.auditing:plugin"], SETTINGS) as svc:
        reader = await svc.token("Rae Reader", "auditing:read")
        muter = await svc.token("Max Muter", "auditing:read", "auditing:mute")
        status, empty = await svc.call("GET", FINDINGS, reader)
        assert status == 200 and empty["findings"] == []

        first = await svc.run_job("auditing.run", PARAMS)
        status, body = await svc.call("GET", FINDINGS, reader)
        assert status == 200, body
        assert {(f["check_id"], f["status"]) for f in body["findings"]} == {
            ("aws.s3.bucket_public", "PASS"),
            (BLOCK, "FAIL"),
        }
        failing = body["findings"][0]  # failures first
        assert failing["check_id"] == BLOCK and failing["provider"] == "aws" and failing["account"] == ACCOUNT
        assert failing["first_seen"] == failing["last_seen"] == first["finished"]
        assert failing["title"] and failing["remediation"] and failing["mute"] is None
        assert body["counts"]["FAIL"] == 1 and body["counts"]["PASS"] == 1

        status, only = await svc.call("GET", f"{FINDINGS}?status=FAIL,MUTED&severity=high,critical,medium", reader)
        assert status == 200 and [f["check_id"] for f in only["findings"]] == [BLOCK]
        status, none = await svc.call("GET", f"{FINDINGS}?provider=github", reader)
        assert status == 200 and none["findings"] == []
        status, none = await svc.call("GET", f"{FINDINGS}?first_seen_after=2999-01-01T00:00:00Z", reader)
        assert status == 200 and none["findings"] == []
        status, bad = await svc.call("GET", f"{FINDINGS}?severity=dire", reader)
        assert status == 400 and bad["error"]["code"] == "invalid_request" and "dire" in bad["error"]["message"]

        rule = {"provider": "aws", "account": ACCOUNT, "check": BLOCK, "region": failing["region"],
                "resource": failing["resource_id"], "reason": "accepted risk: static site account"}  # fmt: skip
        status, denied = await svc.call("POST", MUTES, reader, json=rule)
        assert status == 403 and "auditing:mute" in denied["error"]["message"]
        status, made = await svc.call("POST", MUTES, muter, json=rule)
        assert status == 201, made
        assert made["who"] == "Max Muter" and made["who_id"] == svc.token_ids[muter] and made["check"] == BLOCK
        status, body = await svc.call("GET", FINDINGS + "?status=FAIL", reader)
        assert body["findings"][0]["mute"]["id"] == made["id"]  # applies from the next run on

        await svc.run_job("auditing.run", PARAMS)
        status, body = await svc.call("GET", FINDINGS + f"?check={BLOCK}", reader)
        [muted] = body["findings"]
        assert muted["status"] == "MUTED" and muted["first_seen"] == failing["first_seen"]  # muting keeps its age

        status, gone = await svc.call("DELETE", f"{MUTES}/{made['id']}", muter)
        assert status == 200 and gone == {"id": made["id"], "deleted": True}
        status, again = await svc.call("DELETE", f"{MUTES}/{made['id']}", muter)
        assert status == 404 and again["error"]["code"] == "mute_not_found"
        status, listed = await svc.call("GET", MUTES, reader)
        assert status == 200 and listed["mutes"] == []
        await svc.run_job("auditing.run", PARAMS)
        status, body = await svc.call("GET", FINDINGS + f"?check={BLOCK}", reader)
        assert body["findings"][0]["status"] == "FAIL"


async def test_scopes_and_bad_bodies(tmp_path: Path) -> None:
    async with start_service(tmp_path, ["plugins.auditing:plugin"], SETTINGS) as svc:
        jobs = await svc.token("jobs only", "jobs:read", "jobs:write")
        muter = await svc.token("muter", "auditing:mute")
        for method, path, token in (("GET", FINDINGS, jobs), ("GET", MUTES, jobs), ("POST", MUTES, jobs),
                                    ("DELETE", f"{MUTES}/abc", jobs), ("GET", FINDINGS, muter)):  # fmt: skip
            status, body = await svc.call(method, path, token, json={})
            assert status == 403 and body["error"]["code"] == "forbidden", (method, path, body)
        status, body = await svc.call("POST", MUTES, muter, data=b"[nope")
        assert status == 400 and body["error"]["code"] == "invalid_json"
        status, body = await svc.call("POST", MUTES, muter, json={"check": "aws.*"})
        assert status == 400 and body["error"]["code"] == "invalid_request" and "reason" in body["error"]["message"]
        status, body = await svc.call("POST", MUTES, muter, json={"reason": "x", "who": "someone else"})
        assert status == 400 and "who" in body["error"]["message"]  # who is the caller, not the body
