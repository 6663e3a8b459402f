"""The reviewers' routes (``/v1/plugins/vetting/queue`` and ``decisions``) on a real service whose
embedded worker ran ``vetting.run``: the queue explains each flag, a decision records who made it, the
next run leaves a cleared pair out, and only a token with ``vetting:review`` gets in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.plugin_service import Running, start_service

from .conftest import write_dataset

pytestmark = pytest.mark.timeout(120)
QUEUE = "/v1/plugins/vetting/queue"
DECISIONS = "/v1/plugins/vetting/decisions"


@pytest.fixture
async def vetting(tmp_path: Path) -> AsyncIterator[tuple[Running, dict[str, object]]]:
    contributions, lda, block, _expected = write_dataset(tmp_path / "in", donors=40)
    params = {
        "contributions": str(contributions),
        "watchlists": [str(lda), {"source": str(block), "name": "blocklist"}],
        "chunk_rows": 100,
        "notify": False,
    }
    async with start_service(tmp_path, ["plugins.vetting:plugin"], {"vetting": {"cpu_processes": 0}}) as svc:
        yield svc, params


async def test_the_queue_explains_flags_and_a_decision_records_the_reviewer(
    vetting: tuple[Running, dict[str, object]],
) -> None:
    svc, params = vetting
    reviewer = await svc.token("Rita Reviewer", "vetting:review")
    status, empty = await svc.call("GET", QUEUE, reviewer)
    assert status == 200 and empty["run"] is None and empty["items"] == []

    summary = await svc.run_job("vetting.run", params)
    status, queue = await svc.call("GET", QUEUE, reviewer)
    assert status == 200, queue
    assert queue["run"] == summary["run"] and queue["counts"]["pending"] == len(queue["items"]) > 0
    pairs = {(i["donor_key"], i["subject_key"]) for i in queue["items"]}
    assert len(pairs) == len(queue["items"])  # one item per (donor, subject) pair
    assert sum(len(i["contributions"]) for i in queue["items"]) == summary["flags"]
    item = next(i for i in queue["items"] if i["rule"] == "watchlist_name")
    assert item["reason"] and item["matched_name"] and item["decision"] is None

    body = {"donor_key": item["donor_key"], "subject_key": item["subject_key"], "status": "cleared",
            "reason": "a namesake: different employer"}  # fmt: skip
    status, decision = await svc.call("POST", DECISIONS, reviewer, json=body)
    assert status == 201, decision
    assert decision["reviewer"] == "Rita Reviewer" and decision["reviewer_id"] == svc.token_ids[reviewer]
    status, listed = await svc.call("GET", DECISIONS, reviewer)
    assert status == 200 and [d["subject_key"] for d in listed["decisions"]] == [item["subject_key"]]

    pair = (item["donor_key"], item["subject_key"])
    status, pending = await svc.call("GET", QUEUE, reviewer)
    assert pair not in {(i["donor_key"], i["subject_key"]) for i in pending["items"]}
    status, decided = await svc.call("GET", f"{QUEUE}?status=decided", reviewer)
    [done] = decided["items"]
    assert done["decision"]["status"] == "cleared" and done["decision"]["reviewer"] == "Rita Reviewer"
    assert decided["counts"] == {"pending": pending["counts"]["pending"], "cleared": 1, "confirmed": 0}

    again = await svc.run_job("vetting.run", params)  # the next run reads the decision
    assert again["cleared"] >= 1
    status, latest = await svc.call("GET", f"{QUEUE}?status=all", reviewer)
    assert latest["run"] == again["run"]
    assert pair not in {(i["donor_key"], i["subject_key"]) for i in latest["items"]}
    status, older = await svc.call("GET", f"{QUEUE}?run={summary['run']}&status=decided", reviewer)
    assert status == 200 and older["run"] == summary["run"] and len(older["items"]) == 1


async def test_scopes_and_errors(vetting: tuple[Running, dict[str, object]]) -> None:
    svc, _params = vetting
    reader = await svc.token("jobs reader", "jobs:read", "jobs:write")
    reviewer = await svc.token("reviewer", "vetting:review")
    for method, path in (("GET", QUEUE), ("GET", DECISIONS), ("POST", DECISIONS)):
        status, body = await svc.call(method, path, reader, json={})
        assert status == 403 and "vetting:review" in body["error"]["message"], (method, path, body)
    status, _ = await svc.call("GET", QUEUE, "kp_not_a_token_" + "x" * 40)
    assert status == 401

    status, body = await svc.call("GET", f"{QUEUE}?run=nope", reviewer)
    assert status == 404 and body["error"]["code"] == "run_not_found"
    status, body = await svc.call("GET", f"{QUEUE}?status=maybe", reviewer)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, body = await svc.call("POST", DECISIONS, reviewer, data=b"{not json")
    assert status == 400 and body["error"]["code"] == "invalid_json"
    bad = {"donor_key": "d", "subject_key": "s", "status": "approved", "reason": "x"}
    status, body = await svc.call("POST", DECISIONS, reviewer, json=bad)
    assert status == 400 and body["error"]["code"] == "invalid_request" and "status" in body["error"]["message"]
    blank = {"donor_key": "d", "subject_key": "s", "status": "confirmed", "reason": "   "}
    status, body = await svc.call("POST", DECISIONS, reviewer, json=blank)
    assert status == 400 and body["error"]["code"] == "invalid_request" and "reason" in body["error"]["message"]
    status, body = await svc.call("GET", DECISIONS, reviewer)
    assert status == 200 and body["decisions"] == []  # nothing invalid was stored
