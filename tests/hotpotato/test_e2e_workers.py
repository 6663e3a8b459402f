"""Capture workers going away under a live HLS session. Real ``katopotato worker`` processes, real
Redis, ffmpeg and tiny.en.

- a rolling deploy, SIGTERM: the draining worker's capture job hands the session to a new instance on
  another worker and keeps capturing until that one is aligned; then it stops and the worker exits 0;
- kill -9 of the capture worker: its lease expires, another worker reclaims the capture job, which
  resumes from the last committed media time and backfills the missed audio from the live window.

Both lose and double nothing: each segment sits at the session clock's one offset into the
programme, and no word is lost or doubled around the cut next to a session (on another worker) that
was not disturbed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from couchpotato.testing import Programme, wer
from hotpotato.testing import clock_offsets, epoch_steps, swap_word_errors
from katopotato.blobs import FileBlobStore
from katopotato.broker.redis import RedisBroker
from katopotato.jobs import Job, JobStatus
from katopotato.plugin_host import PluginRegistry, builtin_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import CAPTURE_KIND, start_session

from ..conftest import requires_media_tools
from ..scheduler.conftest import WorkerProcess
from .conftest import LiveHls, read_wav
from .helpers import collect
from .test_e2e_hls import media_reached

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), requires_media_tools]
SAMPLE_S = 1.5 / 16_000
SETTINGS = ("--setting", "transcription.allow_local=true", "--setting", "transcription.url_allowlist=127.0.0.1/32")
FAST = ("--visibility-timeout", "6")
SHORT_LEASE = ("--visibility-timeout", "3")  # a killed worker's capture job is reclaimed 3 s later


@pytest.fixture
async def sched(redis_url: str) -> AsyncIterator[Scheduler]:
    async with RedisBroker(redis_url) as broker:
        yield Scheduler(broker, PluginRegistry(builtin_plugins()))


async def capture_job_on(sched: Scheduler, sid: str, timeout_s: float = 60) -> Job:
    async with asyncio.timeout(timeout_s):
        while True:
            for job in await sched.list(kind=CAPTURE_KIND, status=JobStatus.RUNNING, limit=50):
                if job.params["session_id"] == sid and not job.params.get("takeover") and job.worker:
                    return job
            await asyncio.sleep(0.1)


async def test_sigterm_hands_the_session_to_another_worker_losing_nothing(
    sched: Scheduler,
    redis_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
    programme: Programme,
    live_hls: Callable[[Programme], LiveHls],
) -> None:
    spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "2", *FAST, *SETTINGS, name="asr")
    # the session without swaps, alone on worker "steady"
    spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "1", *FAST, *SETTINGS, name="steady")
    base_sid, sid = "base-" + uuid.uuid4().hex[:6], "roll-" + uuid.uuid4().hex[:6]
    await start_session(sched, base_sid, live_hls(programme).url)
    assert (await capture_job_on(sched, base_sid)).worker == "steady"
    # the session to be moved, on worker "old"; "new" starts afterwards, idle
    old = spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "2", *FAST, *SETTINGS, name="old")
    await start_session(sched, sid, live_hls(programme).url)
    assert (await capture_job_on(sched, sid)).worker == "old"
    spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "2", *FAST, *SETTINGS, name="new")

    await media_reached(sched, sid, 6.0)
    old.terminate()  # SIGTERM: a rolling deploy
    exited = asyncio.ensure_future(asyncio.to_thread(old.proc.wait, 120))
    run = await collect(sched, FileBlobStore(tmp_path / "blobs"), sid)
    base = await collect(sched, FileBlobStore(tmp_path / "blobs"), base_sid)
    assert await exited == 0, old.output()[-3000:]
    exited_at = time.time()

    run.check_complete()
    base.check_complete()
    assert base.swaps == []
    started, done = run.of("swap_started"), run.of("swap_completed")
    assert [(s.trigger, s.mode) for s in started] == [("drain", "overlap")] and len(done) == 1, run.swaps
    assert "old is shutting down" in started[0].reason
    assert done[0].details["new_worker"] == "new", "the replacement runs on another worker"
    assert done[0].details["lost_s"] == 0.0
    assert done[0].details["alignment"]["method"] == "timestamps"
    assert started[0].at < done[0].at < exited_at, "the old worker captured until the new instance took over"
    capture_jobs = {j.id: j for j in await sched.list(kind=CAPTURE_KIND, limit=20)}
    old_job = capture_jobs[done[0].details["old_job"]]
    assert old_job.status is JobStatus.SUCCEEDED and old_job.worker == "old"
    assert (await sched.result(old_job.id))["handed_over"] == started[0].swap_id
    new_job = capture_jobs[done[0].details["new_job"]]
    assert new_job.status is JobStatus.SUCCEEDED and new_job.worker == "new"

    medians, steps, spread = epoch_steps(clock_offsets(read_wav(programme.path), run.segments))
    assert sorted(medians) == [0, 1] and spread <= SAMPLE_S and abs(steps[0]) <= SAMPLE_S, (steps, spread)
    for cw in swap_word_errors(programme.text, base.words, run.words, [done[0].details["cut_s"]]):
        assert cw.window and cw.lost == [] and cw.doubled == [], f"{cw} | {run.text} ||| {base.text}"
    assert wer(programme.text, run.text) <= wer(programme.text, base.text) + 0.02


async def test_kill_9_of_the_capture_worker_resumes_elsewhere_and_backfills(
    sched: Scheduler,
    redis_url: str,
    tmp_path: Path,
    spawn_worker: Callable[..., WorkerProcess],
    programme: Programme,
    live_hls: Callable[..., LiveHls],
) -> None:
    spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "2", *SHORT_LEASE, *SETTINGS, name="asr")
    spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "1", *SHORT_LEASE, *SETTINGS, name="steady")
    base_sid, sid = "base-" + uuid.uuid4().hex[:6], "crash-" + uuid.uuid4().hex[:6]
    await start_session(sched, base_sid, live_hls(programme).url)
    assert (await capture_job_on(sched, base_sid)).worker == "steady"
    doomed = spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "1", *SHORT_LEASE, *SETTINGS, name="doomed")
    await start_session(sched, sid, live_hls(programme, window=20).url)  # a 20 s live window
    assert (await capture_job_on(sched, sid)).worker == "doomed"
    spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "1", *SHORT_LEASE, *SETTINGS, name="rescuer")

    await media_reached(sched, sid, 9.0)
    killed_at = time.time()
    doomed.kill9()
    run = await collect(sched, FileBlobStore(tmp_path / "blobs"), sid)
    base = await collect(sched, FileBlobStore(tmp_path / "blobs"), base_sid)
    run.check_complete()
    base.check_complete()

    started, done = run.of("swap_started"), run.of("swap_completed")
    assert [(s.trigger, s.mode) for s in started] == [("worker_lost", "resume")] and len(done) == 1
    took = done[0].at - killed_at
    assert took <= 3.0 + 5.0 + 5.0, f"resumed {took:.1f} s after the kill (lease 3 s)"
    assert done[0].details["new_worker"] == "rescuer"
    assert done[0].details["lost_s"] == 0.0, "the live window still held the missed audio"
    assert done[0].details["alignment"]["method"] == "timestamps"
    _, steps, spread = epoch_steps(clock_offsets(read_wav(programme.path), run.segments))
    assert len(steps) == 1 and abs(steps[0]) <= SAMPLE_S and spread <= SAMPLE_S, (steps, spread)
    for cw in swap_word_errors(programme.text, base.words, run.words, [done[0].details["cut_s"]]):
        assert cw.window and cw.lost == [] and cw.doubled == [], f"{cw} | {run.text} ||| {base.text}"
    assert wer(programme.text, run.text) <= wer(programme.text, base.text) + 0.02


async def test_a_capture_job_dead_lettered_by_its_workers_deaths_has_its_session_ended_by_reap(
    sched: Scheduler,
    redis_url: str,
    spawn_worker: Callable[..., WorkerProcess],
    programme: Programme,
    live_hls: Callable[..., LiveHls],
) -> None:
    """A worker that dies on the capture job's last try leaves it dead-lettered without running it:
    nothing in the job can end the session. ``transcription.reap`` (every 5 minutes, cron) ends it with
    reason ``error`` and the cause; the segments already cut commit."""
    spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "2", *SHORT_LEASE, *SETTINGS, name="asr")
    doomed = spawn_worker(redis_url, "--kinds", "capture", "--concurrency", "1", *SHORT_LEASE, *SETTINGS, name="doomed")
    sid = "lost-" + uuid.uuid4().hex[:6]
    job = await sched.enqueue(CAPTURE_KIND, {"session_id": sid, "source": live_hls(programme).url}, max_tries=1)
    assert (await capture_job_on(sched, sid)).worker == "doomed"
    await media_reached(sched, sid, 4.0)
    doomed.kill9()
    # the next claim anywhere finds the lease expired with no try left: dead-lettered, never run again
    spawn_worker(redis_url, "--kinds", "capture,plugins", "--concurrency", "2", *SHORT_LEASE, *SETTINGS, name="rescuer")
    dead = await sched.wait(job.id, timeout_s=30)
    assert dead.dead and dead.error and "lease expired" in dead.error, dead
    reaped = await sched.enqueue("transcription.reap")  # what the reap_lost_sessions cron enqueues every 5 minutes
    assert (await sched.wait(reaped.id, timeout_s=30)).status is JobStatus.SUCCEEDED
    assert (await sched.result(reaped.id))["sessions"] == [sid]
    run = await collect(sched, None, sid, timeout_s=60)
    assert run.end.reason == "error" and "capture job was lost" in run.end.error, run.end
    assert [e.seq for e in run.commits] == list(range(run.end.segments)) and run.end.segments >= 1
    assert not [s for s in run.swaps if s.type == "swap_started"], "nothing took the session over"
    # once ended, another run has nothing to do
    again = await sched.enqueue("transcription.reap")
    await sched.wait(again.id, timeout_s=30)
    assert (await sched.result(again.id))["sessions"] == []
