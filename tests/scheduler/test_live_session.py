"""A live session distributed over worker processes: ASR and capture workers die mid-session.

Real ffmpeg, the real tiny.en model, real Redis, real ``katopotato worker`` processes. The source is
a generated programme read at 1x (``realtime``), so segments arrive as they would from a live feed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from couchpotato.records import EndEvent, Event, GapEvent, SessionEvent, TranscriptEvent
from couchpotato.testing import Programme, build_programme, wer
from couchpotato.testing.audit import assert_no_word_lost
from katopotato.broker.redis import RedisBroker
from katopotato.jobs import Job, JobStatus
from katopotato.plugin_host import PluginRegistry, builtin_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import ASR_KIND, CAPTURE_KIND, start_session, transcript_events

from ..conftest import requires_media_tools
from .conftest import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240), requires_media_tools]
Spawn = Callable[..., WorkerProcess]
WER_BOUND = 0.15  # whole-file tiny.en on this corpus is about 0.06; cutting in pauses keeps it near that
FAST = ("--visibility-timeout", "3")


@pytest.fixture(scope="module")
def two_paragraphs(tmp_path_factory: pytest.TempPathFactory) -> Programme:
    """Two corpus paragraphs in two voices: about half a minute."""
    return build_programme(tmp_path_factory.mktemp("live") / "programme", 2)


@pytest.fixture
async def sched(redis_url: str) -> AsyncIterator[Scheduler]:
    async with RedisBroker(redis_url) as broker:
        yield Scheduler(broker, PluginRegistry(builtin_plugins()))


async def running_job(sched: Scheduler, kind: str, worker: str, timeout_s: float = 60) -> Job:
    """The first job of ``kind`` seen running on ``worker`` (polls the job list: another process)."""
    async with asyncio.timeout(timeout_s):
        while True:
            for job in await sched.list(kind=kind, status=JobStatus.RUNNING, limit=200):
                if job.worker == worker:
                    return job
            await asyncio.sleep(0.05)


async def transcript(sched: Scheduler, session_id: str) -> list[Event]:
    async with asyncio.timeout(180):
        return [ev async for _id, ev in transcript_events(sched.broker, session_id)]


def check_transcript(events: list[Event], programme: Programme) -> list[TranscriptEvent]:
    """Complete and ordered: session first, end last, every seq once in order, no gaps; WER bound."""
    assert isinstance(events[0], SessionEvent) and isinstance(events[-1], EndEvent)
    end = events[-1]
    assert end.reason == "end_of_source" and not end.error
    commits = [e for e in events if isinstance(e, TranscriptEvent | GapEvent)]
    assert [e.seq for e in commits] == list(range(end.segments)), "each seq once, in order"
    assert not [e for e in commits if isinstance(e, GapEvent)], "no segment was lost"
    segments = [e for e in commits if isinstance(e, TranscriptEvent)]
    text = " ".join(e.text for e in segments)
    score = wer(programme.text, text)
    assert score <= WER_BOUND, f"WER {score:.3f}: {text}"
    assert_no_word_lost(programme.text, segments)
    return segments


async def test_kill_9_an_asr_worker_mid_session(
    sched: Scheduler, redis_url: str, spawn_worker: Spawn, two_paragraphs: Programme
) -> None:
    settings = ("--setting", "transcription.allow_local=true")
    spawn_worker(redis_url, "--kinds", "capture", *FAST, *settings, name="cap")
    doomed = spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "1", *FAST, *settings, name="asr-a")
    spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "1", *FAST, *settings, name="asr-b")
    sid = uuid.uuid4().hex[:12]
    await start_session(sched, sid, str(two_paragraphs.path), realtime=True)
    victim = await running_job(sched, ASR_KIND, "asr-a")
    doomed.kill9()
    events = await transcript(sched, sid)
    check_transcript(events, two_paragraphs)
    redone = await sched.get(victim.id)
    assert redone.status is JobStatus.SUCCEEDED and redone.tries == 2 and redone.worker == "asr-b"
    asr_jobs = await sched.list(kind=ASR_KIND, limit=500)
    assert len(asr_jobs) == events[-1].segments  # type: ignore[union-attr]
    assert all(j.status is JobStatus.SUCCEEDED for j in asr_jobs)
    capture = (await sched.list(kind=CAPTURE_KIND))[0]
    assert (await sched.wait(capture.id, timeout_s=30)).status is JobStatus.SUCCEEDED


async def test_kill_9_the_capture_worker_mid_session_another_continues(
    sched: Scheduler, redis_url: str, spawn_worker: Spawn, two_paragraphs: Programme, tmp_path: Path
) -> None:
    settings = ("--setting", "transcription.allow_local=true")
    first = spawn_worker(redis_url, "--kinds", "capture", *FAST, *settings, name="cap-1")
    spawn_worker(redis_url, "--kinds", "asr", "--concurrency", "2", *FAST, *settings, name="asr")
    sid = uuid.uuid4().hex[:12]
    await start_session(sched, sid, str(two_paragraphs.path), realtime=True)
    seen: list[int] = []
    async with asyncio.timeout(60):
        async for _id, ev in transcript_events(sched.broker, sid):
            if isinstance(ev, TranscriptEvent):
                seen.append(ev.seq)
            if len(seen) >= 2:
                break
    first.kill9()
    spawn_worker(redis_url, "--kinds", "capture", *FAST, *settings, name="cap-2")
    events = await transcript(sched, sid)
    segments = check_transcript(events, two_paragraphs)
    assert [e.seq for e in segments[:2]] == seen
    capture = (await sched.list(kind=CAPTURE_KIND))[0]
    done = await sched.wait(capture.id, timeout_s=30)
    assert done.status is JobStatus.SUCCEEDED and done.tries == 2 and done.worker == "cap-2"
    result = await sched.result(capture.id)
    assert result["epochs"] == 2 and result["segments"] == events[-1].segments  # type: ignore[union-attr]
    sessions = [e for e in events if isinstance(e, SessionEvent)]
    assert len(sessions) == 1, "the session is announced once, not once per capture worker"
