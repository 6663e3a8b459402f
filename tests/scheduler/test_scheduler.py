"""The scheduler and an in-process worker running real jobs, on both brokers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from katopotato.blobs import FileBlobStore
from katopotato.broker import Broker
from katopotato.errors import (
    InvalidParams,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ResultNotReady,
    UnknownKind,
)
from katopotato.jobs import JobStatus
from katopotato.plugin_host import PluginRegistry, builtin_plugins
from katopotato.scheduler import Scheduler
from katopotato.worker import Worker

from .plugins_for_tests import plugin as testing_plugin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def registry() -> PluginRegistry:
    return PluginRegistry([*builtin_plugins(), testing_plugin])


@pytest.fixture
def scheduler(broker: Broker, registry: PluginRegistry) -> Scheduler:
    return Scheduler(broker, registry)


@contextlib.asynccontextmanager
async def running(broker: Broker, registry: PluginRegistry, tmp_path: Path, **kw: object) -> AsyncIterator[Worker]:
    kw.setdefault("retry_backoff_base_s", 0.05)
    async with Worker(broker, registry, blobs=FileBlobStore(tmp_path / "blobs"), **kw) as w:  # type: ignore[arg-type]
        yield w


async def test_enqueue_validates_against_the_registry(scheduler: Scheduler) -> None:
    with pytest.raises(UnknownKind, match=r"nope\.job"):
        await scheduler.enqueue("nope.job")
    with pytest.raises(InvalidParams, match="sleep_s"):
        await scheduler.enqueue("testing.echo", {"sleep_s": -1})
    job = await scheduler.enqueue("testing.echo", {"value": [1, "a"]})
    assert job.params["value"] == [1, "a"] and job.params["sleep_s"] == 0.0
    with pytest.raises(ResultNotReady):
        await scheduler.result(job.id)
    with pytest.raises(JobNotFound):
        await scheduler.get("missing")


async def test_a_job_runs_reports_progress_and_keeps_its_result(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    job = await scheduler.enqueue("testing.echo", {"value": {"hello": "world"}, "sleep_s": 0.3, "steps": 3})
    async with running(broker, registry, tmp_path):
        events = [e async for e in scheduler.events(job.id)]
    assert [e.status.value for e in events if e.type == "status"] == ["queued", "running", "succeeded"]
    progress = [e.progress for e in events if e.type == "progress"]
    assert [(p.done, p.total) for p in progress if p] == [(1, 3), (2, 3), (3, 3)]
    assert await scheduler.result(job.id) == {"hello": "world"}
    done = await scheduler.get(job.id)
    assert done.tries == 1 and done.started_at and done.finished_at and done.finished_at >= done.started_at
    # resume after an event id, as SSE Last-Event-ID does
    rest = [e async for e in scheduler.events(job.id, after=events[1].id)]
    assert [e.id for e in rest] == [e.id for e in events[2:]]


async def test_retries_with_backoff_then_dead_letter_and_requeue(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    flaky = await scheduler.enqueue("testing.echo", {"value": 7, "fail_tries": 2})
    doomed = await scheduler.enqueue("testing.echo", {"value": 8, "fail_tries": 99}, max_tries=2)
    retried = await scheduler.enqueue("testing.retry_then_ok", {"times": 2, "defer_s": 0.05})
    async with running(broker, registry, tmp_path):
        jobs = await scheduler.wait_all([flaky.id, doomed.id, retried.id], timeout_s=20)
    flaky_done, doomed_done, retried_done = jobs
    assert retried_done.status is JobStatus.SUCCEEDED and retried_done.tries == 3
    assert flaky_done.status is JobStatus.SUCCEEDED and flaky_done.tries == 3
    assert await scheduler.result(flaky.id) == 7
    assert doomed_done.status is JobStatus.FAILED and doomed_done.tries == 2
    assert doomed_done.error and "failing try 2" in doomed_done.error
    assert await scheduler.result(retried.id) == 3
    dead = await scheduler.dead_letters()
    assert [j.id for j in dead] == [doomed.id]
    with pytest.raises(JobFailed, match="failing try 2"):
        await scheduler.result(doomed.id)
    again = await scheduler.requeue(doomed.id)
    assert again.status is JobStatus.QUEUED and again.tries == 0
    assert await scheduler.dead_letters() == []


async def test_cancel_a_running_and_a_queued_job(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    long = await scheduler.enqueue("testing.echo", {"sleep_s": 60, "steps": 600})
    async with running(broker, registry, tmp_path, concurrency=1, heartbeat_s=0.1):
        queued = await scheduler.enqueue("testing.echo", {"value": 1})
        async for ev in scheduler.events(long.id):
            if ev.type == "progress":
                break
        assert (await scheduler.cancel(queued.id)).status is JobStatus.CANCELLED
        marked = await scheduler.cancel(long.id)
        assert marked.cancel_requested
        final = await scheduler.wait(long.id, timeout_s=10)
    assert final.status is JobStatus.CANCELLED
    assert final.progress is not None and final.progress.done < 600
    with pytest.raises(JobCancelled):
        await scheduler.result(long.id)
    assert (await scheduler.get(queued.id)).started_at is None


async def test_idempotency_key_does_not_double_a_job(scheduler: Scheduler) -> None:
    a = await scheduler.enqueue("testing.echo", {"value": 1}, idempotency_key="once")
    b = await scheduler.enqueue("testing.echo", {"value": 2}, idempotency_key="once")
    assert a.id == b.id and b.params["value"] == 1
    assert len(await scheduler.list()) == 1


async def test_fan_out_lends_the_slot_so_one_slot_is_enough(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    job = await scheduler.enqueue("testing.fan_out", {"n": 5})
    async with running(broker, registry, tmp_path, concurrency=1):
        await scheduler.wait(job.id, timeout_s=20)
    assert await scheduler.result(job.id) == [0, 1, 4, 9, 16]
    children = await scheduler.list(kind="testing.square")
    assert len(children) == 5 and {c.parent_id for c in children} == {job.id}


async def test_per_kind_concurrency_limit_across_two_workers(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    jobs = [await scheduler.enqueue("testing.limited", {"tag": "g"}) for _ in range(6)]
    async with running(broker, registry, tmp_path, concurrency=4), running(broker, registry, tmp_path, concurrency=4):
        await scheduler.wait_all([j.id for j in jobs], timeout_s=20)
    inside = peak = 0
    for e in await broker.read("gate:g", count=100):
        inside += 1 if "in" in e.data else -1
        peak = max(peak, inside)
    assert peak == 2


async def test_live_priority_runs_before_batch_work(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    batch = [await scheduler.enqueue("testing.order", {"tag": "p"}, priority=200) for _ in range(3)]
    live = [await scheduler.enqueue("testing.order", {"tag": "p"}, priority=0) for _ in range(3)]
    async with running(broker, registry, tmp_path, concurrency=1):
        await scheduler.wait_all([j.id for j in batch + live], timeout_s=20)
    ran = [e.data["id"] for e in await broker.read("order:p")]
    assert ran == [j.id for j in live + batch]


async def test_burst_worker_exits_when_idle(
    scheduler: Scheduler, broker: Broker, registry: PluginRegistry, tmp_path: Path
) -> None:
    for i in range(10):
        await scheduler.enqueue("testing.echo", {"value": i})
    worker = Worker(broker, registry, blobs=FileBlobStore(tmp_path), kinds=["testing"], concurrency=3)
    await asyncio.wait_for(worker.run(burst=True), 20)
    assert worker.stats.succeeded == 10
    assert {j.status for j in await scheduler.list()} == {JobStatus.SUCCEEDED}
