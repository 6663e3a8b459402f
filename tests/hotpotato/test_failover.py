"""A failover whose new instance starts before the old instance has recorded the swap.

The old instance enqueues the new instance's job first and records the swap (``accept``) right
after. On a loaded machine a worker can start that job in between; the new instance must wait for
the swap, not take it for one that is already over (it used to stop at once, and the old instance
waited out its whole timeout before trying again, losing that much of a live page).

Real FFmpeg on a recorded file read in real time, killed with SIGKILL; the memory broker; tiny.en.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from couchpotato.testing import wer
from katopotato.blobs import FileBlobStore
from katopotato.broker import MemoryBroker
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import _JobHost, start_session
from katopotato.worker import Worker

from ..conftest import requires_media_tools
from .helpers import capture_ffmpeg, collect, kill9
from .test_e2e_hls import media_reached

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), requires_media_tools]

ACCEPT_DELAY_S = 1.0  # how long after the new job is enqueued the old instance records the swap
WER_BOUND = 0.2


async def test_a_failover_whose_new_job_starts_before_the_swap_is_recorded_takes_over_at_once(
    short_speech: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, text = short_speech
    original = _JobHost.start_successor

    async def slow_to_record(self: _JobHost, swap_id: str) -> str:
        job = await original(self, swap_id)
        await asyncio.sleep(ACCEPT_DELAY_S)  # the new job is picked up meanwhile
        return job

    monkeypatch.setattr(_JobHost, "start_successor", slow_to_record)
    settings: dict[str, Any] = {"allow_local": True, "swap_start_timeout_s": 15.0}
    registry = load_plugins(installed=False, settings={"transcription": settings})
    blobs = FileBlobStore(tmp_path / "blobs")
    async with MemoryBroker() as broker, Worker(broker, registry, blobs=blobs, kinds=["capture", "asr"],
                                                concurrency=4):  # fmt: skip
        sched = Scheduler(broker, registry)
        await start_session(sched, "fo1", str(path), realtime=True)
        await media_reached(sched, "fo1", 1.0)  # a segment is committed: there is a point to resume after
        victim = capture_ffmpeg(path.name)
        assert victim is not None, "the file is read in real time: FFmpeg is still reading it"
        kill9(victim)
        run = await collect(sched, blobs, "fo1", timeout_s=90)
    run.check_complete()
    started, done, failed = run.of("swap_started"), run.of("swap_completed"), run.of("swap_failed")
    assert [(s.trigger, s.mode) for s in started] == [("failover", "resume")], [f.details.get("error") for f in failed]
    assert len(done) == 1 and not failed
    # a recorded file is read again from the cut: nothing is lost
    assert done[0].details["lost_s"] == pytest.approx(0.0, abs=0.05)
    assert wer(text, run.text) <= WER_BOUND, run.text
