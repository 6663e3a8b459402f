"""Real worker processes on real Redis: kill -9, SIGTERM drain, and the jobs CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from katopotato.broker.redis import RedisBroker
from katopotato.jobs import JobStatus
from katopotato.plugin_host import PluginRegistry, builtin_plugins
from katopotato.scheduler import Scheduler

from .conftest import REPO, WorkerProcess
from .plugins_for_tests import SPEC
from .plugins_for_tests import plugin as testing_plugin

pytestmark = pytest.mark.timeout(120)
Spawn = Callable[..., WorkerProcess]


@pytest.fixture
async def sched(redis_url: str) -> AsyncIterator[Scheduler]:
    async with RedisBroker(redis_url) as broker:
        yield Scheduler(broker, PluginRegistry([*builtin_plugins(), testing_plugin]))


async def started(sched: Scheduler, tag: str, count: int) -> list[dict[str, int]]:
    """Block until the tag's job has been started ``count`` times; the start records."""
    out: list[dict[str, int]] = []
    cursor = "0"
    while len(out) < count:
        for e in await sched.broker.read(f"started:{tag}", cursor, block_s=30):
            cursor = e.id
            out.append(e.data)
    return out


async def test_kill_9_mid_job_completes_elsewhere_exactly_once_in_effect(
    sched: Scheduler, redis_url: str, spawn_worker: Spawn
) -> None:
    tag = uuid.uuid4().hex[:8]
    a = spawn_worker(redis_url, "--kinds", "testing", "--visibility-timeout", "2", name="a")
    job = await sched.enqueue("testing.slow_effect", {"tag": tag, "seconds": 1.5})
    [first] = await started(sched, tag, 1)
    assert first == {"pid": a.pid, "try": 1}
    a.kill9()  # mid-job: no ack, no hand-back
    b = spawn_worker(redis_url, "--kinds", "testing", "--visibility-timeout", "2", name="b")
    done = await sched.wait(job.id, timeout_s=60)
    assert done.status is JobStatus.SUCCEEDED, done
    assert done.tries == 2 and done.worker == "b"
    assert await started(sched, tag, 2) == [{"pid": a.pid, "try": 1}, {"pid": b.pid, "try": 2}]
    effects = [e.data for e in await sched.broker.read(f"effects:{tag}")]
    assert effects == [{"pid": b.pid}]
    assert await sched.result(job.id) == {"pid": b.pid, "applied": True}


async def test_sigterm_lets_the_job_finish_and_claims_nothing_more(
    sched: Scheduler, redis_url: str, spawn_worker: Spawn
) -> None:
    tag = uuid.uuid4().hex[:8]
    a = spawn_worker(redis_url, "--kinds", "testing", "--concurrency", "1", "--drain-grace", "20", name="a")
    first = await sched.enqueue("testing.slow_effect", {"tag": tag, "seconds": 1.0})
    await started(sched, tag, 1)
    second = await sched.enqueue("testing.slow_effect", {"tag": tag + "-2", "seconds": 0})
    a.terminate()
    assert a.proc.wait(timeout=30) == 0, a.output()
    assert (await sched.get(first.id)).status is JobStatus.SUCCEEDED
    left = await sched.get(second.id)
    assert left.status is JobStatus.QUEUED and left.tries == 0


async def test_sigterm_hands_back_what_cannot_finish_in_the_grace(
    sched: Scheduler, redis_url: str, spawn_worker: Spawn
) -> None:
    tag = uuid.uuid4().hex[:8]
    a = spawn_worker(redis_url, "--kinds", "testing", "--drain-grace", "0.3", name="a")
    job = await sched.enqueue("testing.slow_effect", {"tag": tag, "seconds": 2.0})
    await started(sched, tag, 1)
    a.terminate()
    assert a.proc.wait(timeout=30) == 0, a.output()
    back = await sched.get(job.id)
    assert back.status is JobStatus.QUEUED and back.tries == 0  # handed back: the try does not count
    assert await sched.broker.read(f"effects:{tag}") == []
    spawn_worker(redis_url, "--kinds", "testing", name="b")
    done = await sched.wait(job.id, timeout_s=30)
    assert done.status is JobStatus.SUCCEEDED and done.tries == 1 and done.worker == "b"


def jobs_cli(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUCHPOTATO_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "katopotato.cli", "jobs", "--broker", redis_url, *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def test_jobs_cli_list_show_cancel_requeue(sched: Scheduler, redis_url: str, tmp_path: Path) -> None:
    job = await sched.enqueue("testing.echo", {"value": 1})
    listed = jobs_cli(redis_url, tmp_path, "list")
    assert listed.returncode == 0 and job.id in listed.stdout and "queued" in listed.stdout
    cancelled = jobs_cli(redis_url, tmp_path, "cancel", job.id)
    assert cancelled.returncode == 0 and cancelled.stdout.split() == [job.id, "testing.echo", "cancelled"]
    shown = jobs_cli(redis_url, tmp_path, "--json", "show", job.id)
    assert json.loads(shown.stdout)["status"] == "cancelled"
    again = jobs_cli(redis_url, tmp_path, "requeue", job.id)
    assert again.returncode == 0 and again.stdout.split()[-1] == "queued"
    assert (await sched.get(job.id)).status is JobStatus.QUEUED
    wrong = jobs_cli(redis_url, tmp_path, "requeue", job.id)
    assert wrong.returncode == 1 and wrong.stderr.strip() == (
        f"katopotato: error: job {job.id} is queued; only failed or cancelled jobs can be requeued"
    )
    missing = jobs_cli(redis_url, tmp_path, "show", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "katopotato: error: no job nope"
    enq = jobs_cli(redis_url, tmp_path, "enqueue", "testing.echo", "--params", '{"sleep_s": -1}', "--plugin", SPEC)
    assert enq.returncode == 1 and "bad parameters for testing.echo: sleep_s" in enq.stderr
    assert len(enq.stderr.strip().splitlines()) == 1
