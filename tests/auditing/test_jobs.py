"""``auditing.run`` on the scheduler as the service runs it: registered through its entry point with
its hourly schedule; the scheduled run on configured providers, and without any it does nothing and
says so; the result's outputs are in the blob store."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from katopotato.blobs import FileBlobStore
from katopotato.broker import MemoryBroker
from katopotato.jobs import JobStatus
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler
from katopotato.worker import Worker


def test_registered_with_an_hourly_schedule() -> None:
    registry = load_plugins()
    plugin = registry.get("auditing")
    assert {"auditing.run", "auditing.checks"} <= set(registry.kinds())
    [hourly] = plugin.schedules
    assert (hourly.name, hourly.cron, hourly.job, hourly.params) == ("hourly", "0 * * * *", "run", {"scheduled": True})


async def run_job(
    tmp_path: Path, settings: dict[str, object], params: dict[str, object]
) -> tuple[object, FileBlobStore]:
    registry = load_plugins(settings={"auditing": settings})
    blobs = FileBlobStore(tmp_path / "blobs")
    async with MemoryBroker() as broker:
        sched = Scheduler(broker, registry)
        job = await sched.enqueue("auditing.run", params)
        async with Worker(broker, registry, blobs=blobs, concurrency=1):
            await sched.wait(job.id)
        final = await sched.get(job.id)
        assert final.status is JobStatus.SUCCEEDED, final.error
        return await sched.result(job.id), blobs


async def test_the_scheduled_run_without_providers_does_nothing_and_says_so(tmp_path: Path) -> None:
    result, _ = await run_job(tmp_path, {}, {"scheduled": True})
    assert result == {"skipped": "no providers configured (setting auditing.providers)"}


async def test_the_scheduled_run_audits_the_configured_providers(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    settings = {"providers": ["aws"], "aws_regions": ["us-east-1"]}
    result, blobs = await run_job(tmp_path, settings, {"scheduled": True, "checks": ["aws.s3.*"]})
    assert isinstance(result, dict)
    assert result["providers"] == ["aws"] and result["checks"] == 2 and result["status"]["FAIL"] == 1
    findings = json.loads(await blobs.get(result["outputs"]["json"]))
    assert {(f["check_id"], f["status"]) for f in findings} == {
        ("aws.s3.bucket_public", "PASS"),
        ("aws.s3.account_public_access_block", "FAIL"),
    }
    assert b"couchpotato_audit_findings" in await blobs.get(result["metrics"])
    assert await blobs.exists("auditing/state/aws/123456789012.json")
