"""End to end: ``vetting.run`` through the scheduler on real Redis, its chunks fanned out over two
``katopotato worker`` processes (the CPU work in each worker's process pool), the flagged CSV and
JSON collated into the blob store, the summary received by a real SMTP server (aiosmtpd), and a
reviewer's decision keeping a cleared flag out of the next run."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import pytest

from katopotato.blobs import FileBlobStore
from katopotato.broker.redis import RedisBroker
from katopotato.jobs import JobStatus
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler

from .conftest import Inbox, WorkerProcess, write_dataset

pytestmark = pytest.mark.timeout(240)


def payload(part: Message) -> str:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data.decode()


async def test_run_fans_out_over_two_workers_and_mails_the_summary(
    tmp_path: Path, redis_url: str, spawn_worker: Callable[..., WorkerProcess], smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    contributions, lda, block, expected = write_dataset(tmp_path / "in")
    settings = [
        "--setting",
        'vetting.mail_to=["compliance@campaign.example"]',
        "--setting",
        "vetting.smtp_host=127.0.0.1",
        "--setting",
        f"vetting.smtp_port={port}",
        "--setting",
        "vetting.cpu_processes=1",
    ]
    a = spawn_worker(redis_url, "--kinds", "vetting", "--concurrency", "2", *settings, name="a")
    b = spawn_worker(redis_url, "--kinds", "vetting", "--concurrency", "2", *settings, name="b")
    registry = load_plugins()
    assert "vetting.run" in registry.kinds()  # found through its entry point
    async with RedisBroker(redis_url) as broker, FileBlobStore(tmp_path / "blobs") as blobs:
        sched = Scheduler(broker, registry)
        params = {
            "contributions": str(contributions),
            "watchlists": [str(lda), {"source": str(block), "name": "blocklist"}],
            "chunk_rows": 100,
        }
        job = await sched.enqueue("vetting.run", params)
        done = await sched.wait(job.id, timeout_s=180)
        assert done.status is JobStatus.SUCCEEDED, (done.error, a.output()[-2000:], b.output()[-2000:])
        result = await sched.result(job.id)

        chunks = await sched.list(kind="vetting.chunk", limit=100)
        assert len(chunks) == result["chunks"] == 5 and all(c.status is JobStatus.SUCCEEDED for c in chunks)
        assert {c.worker for c in chunks} == {"a", "b"}  # fanned out over both processes
        assert all(c.parent_id == job.id for c in chunks)

        assert result["contributions"] == 461 and result["malformed"] == 3
        assert result["malformed_rows"] == [
            f"{block}:4: entry 4: no name",
            f"{contributions}:41: expected 21 pipe-separated fields, found 3",
            f"{contributions}:201: TRANSACTION_AMT is not a number: '1O0'",
        ]
        assert result["watchlists"] == ["blocklist", "lda"] and result["watchlist_entries"] == 6
        flagged = list(csv.DictReader(io.StringIO((await blobs.get(result["outputs"]["csv"])).decode())))
        got = {(r["contribution_id"], r["rule"]) for r in flagged}
        assert set(expected.items()) <= got, sorted(set(expected.items()) - got)
        assert not any(r["contribution_id"] == "9011" for r in flagged)  # the look-alike
        background = [r for r in flagged if int(r["contribution_id"]) < 9000]
        assert background == []
        smith = next(r for r in flagged if r["contribution_id"] == "9001")
        assert smith["list"] == "lda" and smith["matched_name"] == "Robert J. Smith" and float(smith["score"]) >= 0.9
        assert "nickname bob = robert" in smith["reason"] and "employer matches" in smith["reason"]
        as_json = json.loads(await blobs.get(result["outputs"]["json"]))
        assert len(as_json["flags"]) == len(flagged) and as_json["summary"]["flags"] == len(flagged)
        malformed_csv = (await blobs.get(result["outputs"]["malformed"])).decode()
        assert [r["line"] for r in csv.DictReader(io.StringIO(malformed_csv))] == ["4", "41", "201"]
        assert await blobs.list(f"vetting/runs/{job.id}/chunks/") == []  # intermediate blobs removed

        [(_sender, rcpts, msg)] = inbox.messages
        assert rcpts == ["compliance@campaign.example"] and result["mailed_to"] == rcpts
        assert msg["Subject"] == f"Vetting: {len(flagged)} flags in 461 contributions"
        body = payload(next(p for p in msg.walk() if p.get_content_type() == "text/plain"))
        assert "watchlist_name: 3" in body and "Malformed rows skipped: 3" in body and "SMITH, BOB MR." in body
        [attachment] = [p for p in msg.walk() if p.get_filename() == "flagged.csv"]
        assert payload(attachment).count("\n") == len(flagged) + 1

        # a reviewer clears Bob Smith for that entry: the next run does not raise it again
        decision = await sched.enqueue(
            "vetting.decide",
            {"donor_key": smith["donor_key"], "subject_key": smith["subject_key"], "reason": "another Robert Smith"},
        )
        assert (await sched.wait(decision.id, timeout_s=60)).status is JobStatus.SUCCEEDED
        again = await sched.enqueue("vetting.run", params)
        assert (await sched.wait(again.id, timeout_s=180)).status is JobStatus.SUCCEEDED
        second = await sched.result(again.id)
        flagged2 = list(csv.DictReader(io.StringIO((await blobs.get(second["outputs"]["csv"])).decode())))
        assert {r["contribution_id"] for r in flagged} - {r["contribution_id"] for r in flagged2} == {"9001"}
        assert second["cleared"] == 1 and len(inbox.messages) == 2
