"""HotPotato end to end on live HLS made by ffmpeg: real Redis, FFmpeg, the tiny.en model, a capture
worker in this process.

- an API swap and then a kill -9 of the capture's FFmpeg in one session, next to the same programme
  captured without swaps: no audio lost or doubled (each segment found in the programme at the
  session clock's one offset), no word lost or doubled around the cuts, the same WER;
- a source that goes quiet on purpose (12 s of silence): reported silent, never swapped; then a
  swap that fails (no capture worker free to run the new instance): reported, and the old
  instance keeps capturing to the end with nothing lost;
- a new instance that crashes after the old one has cut over: the swap fails at once with the
  crash as its reason (not after the old instance's commit timeout), and the old instance takes
  its cut back and captures to the end with nothing lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from couchpotato.records import TranscriptEvent
from couchpotato.testing import Programme, wer
from couchpotato.testing.audit import assert_no_word_lost
from hotpotato.testing import clock_offsets, epoch_steps, swap_word_errors
from katopotato.api.swaps import request_swap, swap_status
from katopotato.blobs import FileBlobStore
from katopotato.broker.redis import RedisBroker
from katopotato.capture import SessionCapture
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import CAPTURE_KIND, start_session, transcript_events
from katopotato.worker import Worker

from ..conftest import requires_media_tools
from .conftest import LiveHls, read_wav
from .helpers import capture_ffmpeg, collect, kill9

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300), requires_media_tools]

DETECTION_GOAL_S = 5.0
HLS_TIMESTAMP_ERROR_S = 1.5 / 16_000  # timestamps place a new instance to the sample
WER_BOUND = 0.12


@dataclass
class Cluster:
    sched: Scheduler
    blobs: FileBlobStore


def registry(**transcription: Any) -> Any:
    settings = {"allow_local": True, "url_allowlist": "127.0.0.1/32", **transcription}
    return load_plugins(installed=False, settings={"transcription": settings})


@pytest.fixture
async def cluster(redis_url: str, tmp_path: Path) -> AsyncIterator[Cluster]:
    reg = registry()
    async with RedisBroker(redis_url) as broker:
        blobs = FileBlobStore(tmp_path / "blobs")
        async with Worker(broker, reg, blobs=blobs, kinds=["capture", "asr"], concurrency=8, name="w1",
                          visibility_s=10):  # fmt: skip
            yield Cluster(Scheduler(broker, reg), blobs)


async def media_reached(sched: Scheduler, sid: str, seconds: float) -> None:
    """Until the session has committed audio up to ``seconds`` of media time."""
    async with asyncio.timeout(90):
        async for _id, ev in transcript_events(sched.broker, sid):
            if isinstance(ev, TranscriptEvent) and ev.end >= seconds:
                return


async def audio_reached(sched: Scheduler, sid: str, seconds: float) -> None:
    """Until the session's capture instance has read ``seconds`` of media (its health record)."""
    async with asyncio.timeout(90):
        while True:
            health = (await swap_status(sched, sid))["health"]
            if health and health["probe"]["media_s"] >= seconds:
                return
            await asyncio.sleep(0.25)


async def swap_over(sched: Scheduler, sid: str, swap_id: str | None = None) -> dict[str, Any]:
    """The swap record once it is completed or failed."""
    async with asyncio.timeout(90):
        while True:
            status = await swap_status(sched, sid)
            swap = status["swap"]
            if swap and (swap_id is None or swap["id"] == swap_id) and swap["phase"] in ("completed", "failed"):
                return swap
            await asyncio.sleep(0.2)


async def test_api_swap_and_kill_9_of_ffmpeg_lose_and_double_nothing(
    cluster: Cluster, programme: Programme, live_hls: Callable[[Programme], LiveHls]
) -> None:
    sched = cluster.sched
    base_stream, swap_stream = live_hls(programme), live_hls(programme)
    base_sid, sid = "base-" + uuid.uuid4().hex[:6], "swap-" + uuid.uuid4().hex[:6]
    await start_session(sched, base_sid, base_stream.url)
    await start_session(sched, sid, swap_stream.url)

    # 1. an API swap once a few segments are in
    await media_reached(sched, sid, 6.0)
    requested = await request_swap(sched, sid, "test: operator asked")
    first = await swap_over(sched, sid, requested.id)
    assert first["phase"] == "completed", first
    # Timestamps place the new instance exactly; the audio confirms it to the sample unless the
    # overlap happened to fall in a pause (then the record says it was not checked).
    alignment = first["alignment"]
    assert alignment["method"] == "timestamps", alignment
    if alignment["residual_ms"] is None:
        assert alignment["note"].startswith("not checked"), alignment
    else:
        assert abs(alignment["residual_ms"]) <= 1000 / 16_000, alignment
    assert first["lost_s"] == 0.0

    # 2. kill -9 the new instance's FFmpeg mid-speech: failover, backfilled from the live window
    await media_reached(sched, sid, first["cut_sample"] / 16_000 + 5.0)
    victim = capture_ffmpeg(swap_stream.url)
    assert victim is not None, "the capture's FFmpeg"
    killed_at = time.time()
    kill9(victim)

    run = await collect(sched, cluster.blobs, sid)
    base = await collect(sched, cluster.blobs, base_sid)
    run.check_complete()
    base.check_complete()
    assert base.swaps == []

    started = run.of("swap_started")
    completed = run.of("swap_completed")
    assert [(s.trigger, s.mode) for s in started] == [("api", "overlap"), ("failover", "resume")]
    assert [s.epoch for s in completed] == [1, 2] and not run.of("swap_failed")
    failover_started, failover_done = started[1], completed[1]
    detection = failover_started.at - killed_at
    assert 0 <= detection <= DETECTION_GOAL_S, f"detected after {detection:.2f} s"
    assert "killed" in failover_started.reason or "exited" in failover_started.reason
    assert failover_done.details["lost_s"] == 0.0, "the live window held the missed audio"
    assert failover_done.details["alignment"]["method"] == "timestamps"

    # Audio: every segment sits at the session clock's single offset into the programme
    places = clock_offsets(read_wav(programme.path), run.segments)
    medians, steps, spread = epoch_steps(places)
    assert sorted(medians) == [0, 1, 2], "segments of every epoch were found in the programme"
    assert spread <= HLS_TIMESTAMP_ERROR_S, f"a clock jump inside an epoch: {spread * 1000:.2f} ms"
    assert all(abs(s) <= HLS_TIMESTAMP_ERROR_S for s in steps), f"steps at the swaps: {steps}"
    # the owned spans tile the timeline: the new instance's first segment starts at the cut
    cuts = [s.details["cut_s"] for s in completed]
    for cut, swap in zip(cuts, completed, strict=True):
        first_new = next(seg for seg, _ in run.segments if seg.seq == swap.details["next_seq"])
        last_old = next(seg for seg, _ in run.segments if seg.seq == swap.details["next_seq"] - 1)
        assert last_old.keep_end <= cut + 1e-3 and first_new.keep_start == pytest.approx(cut, abs=1e-3)

    # Words: none lost or doubled around either cut, compared with the run without swaps
    for cw in swap_word_errors(programme.text, base.words, run.words, cuts):
        assert cw.window, f"no words near the cut at {cw.cut_s:.1f} s"
        assert cw.lost == [] and cw.doubled == [], f"at {cw.cut_s:.1f} s: {cw} | {run.text}"
    assert_no_word_lost(programme.text, run.events)
    swapped_wer, base_wer = wer(programme.text, run.text), wer(programme.text, base.text)
    assert swapped_wer <= WER_BOUND and swapped_wer <= base_wer + 0.02, (swapped_wer, base_wer, run.text)

    status = await swap_status(sched, sid)
    assert status["capture"]["epoch"] == 2 and status["health"]["epoch"] == 2
    assert [h["trigger"] for h in status["history"]] == ["api"] and status["swap"]["trigger"] == "failover"


async def test_a_quiet_source_is_not_swapped_and_a_failed_swap_leaves_the_old_instance_capturing(
    redis_url: str, tmp_path: Path, quiet_programme: Programme, live_hls: Callable[[Programme], LiveHls]
) -> None:
    """The programme goes quiet for 12 s on purpose: reported silent, never swapped. Then an API swap
    whose new instance cannot start (the only capture slot is the session's) fails: reported, and
    the old instance captures to the end with nothing lost."""
    reg = registry(swap_start_timeout_s=3.0)
    stream = live_hls(quiet_programme)
    sid = "quiet-" + uuid.uuid4().hex[:6]
    verdicts: list[str] = []
    async with RedisBroker(redis_url) as broker:
        blobs = FileBlobStore(tmp_path / "blobs")
        sched = Scheduler(broker, reg)

        async def watch() -> None:
            while True:
                health = (await swap_status(sched, sid))["health"]
                if health:
                    verdicts.append(health["verdict"]["state"])
                await asyncio.sleep(0.5)

        async with (
            Worker(broker, reg, blobs=blobs, kinds=["capture"], concurrency=1, name="cap"),
            Worker(broker, reg, blobs=blobs, kinds=["asr"], concurrency=2, name="asr"),
        ):
            await start_session(sched, sid, stream.url)
            watcher = asyncio.create_task(watch())
            try:
                await audio_reached(sched, sid, 32.0)  # through the pause, into the second paragraph
            finally:
                watcher.cancel()
            assert "silent" in verdicts and "broken" not in verdicts, verdicts
            assert (await swap_status(sched, sid))["swap"] is None, "a quiet source is not a broken capture"
            requested = await request_swap(sched, sid, "test: no room for the new instance")
            swap = await swap_over(sched, sid, requested.id)
            assert swap["phase"] == "failed" and "not aligned within 8 s (did it start?)" in swap["error"]
            run = await collect(sched, blobs, sid)
            jobs = await sched.list(kind=CAPTURE_KIND, limit=10)
    run.check_complete()
    assert [(s.type, s.trigger) for s in run.swaps] == [("swap_started", "api"), ("swap_failed", "api")]
    assert run.swaps[1].details["error"] == swap["error"]
    assert {seg.epoch for seg, _ in run.segments} == {0}, "the old instance captured to the end"
    _, steps, spread = epoch_steps(clock_offsets(read_wav(quiet_programme.path), run.segments))
    assert spread <= HLS_TIMESTAMP_ERROR_S and not steps
    assert wer(quiet_programme.text, run.text) <= WER_BOUND
    new_job = next(j for j in jobs if j.params.get("takeover") == requested.id)
    assert new_job.status.value == "cancelled", "the new instance that never ran was withdrawn"


async def test_a_new_instance_that_crashes_at_the_cut_fails_the_swap_at_once_and_loses_nothing(
    cluster: Cluster, programme: Programme, live_hls: Callable[[Programme], LiveHls], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_args: object) -> bool:
        raise RuntimeError("test: the new instance crashed at the cut")

    monkeypatch.setattr(SessionCapture, "_commit", crash)
    sched = cluster.sched
    stream = live_hls(programme)
    sid = "crash-" + uuid.uuid4().hex[:6]
    await start_session(sched, sid, stream.url)
    await media_reached(sched, sid, 6.0)
    requested = await request_swap(sched, sid, "test: operator asked")
    swap = await swap_over(sched, sid, requested.id)
    assert swap["phase"] == "failed", swap
    assert swap["error"] == "the new instance crashed: RuntimeError: test: the new instance crashed at the cut"

    run = await collect(sched, cluster.blobs, sid)
    run.check_complete()
    assert [s.type for s in run.swaps] == ["swap_started", "swap_failed"]
    assert {seg.epoch for seg, _ in run.segments} == {0}, "the old instance captured to the end"
    _, steps, spread = epoch_steps(clock_offsets(read_wav(programme.path), run.segments))
    assert spread <= HLS_TIMESTAMP_ERROR_S and not steps, "its cut was taken back: nothing lost or repeated"
    assert wer(programme.text, run.text) <= WER_BOUND, run.text
