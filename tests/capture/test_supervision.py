"""``capture.supervision``: the health probe of a real running capture (FFmpeg reading a recorded
file at 1x), published under ``health:<session>``, the supervisor's verdict, and the failover a
broken verdict starts through the fake host."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from couchpotato.capture import CaptureOptions
from couchpotato.segmenter import Segmenter
from katopotato.api.swaps import swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore, SwapSettings
from katopotato.capture.session import SessionCapture
from katopotato.keys import health_key

from ..conftest import requires_media_tools
from .conftest import SID, FakeHost, make_capture, owned

pytestmark = [pytest.mark.timeout(60), requires_media_tools]


async def _running(cap: SessionCapture, stack: contextlib.AsyncExitStack) -> None:
    await owned(cap)
    await cap._enter(stack, cap._direct_options)
    cap.inst.segmenter = Segmenter(SID)
    assert await cap._first_chunk() is not None


async def test_the_probe_and_verdict_are_published(broker: MemoryBroker, short_speech: tuple[Path, str]) -> None:
    host = FakeHost()
    cap = make_capture(broker, host, short_speech[0], options=CaptureOptions(allow_local=True, realtime=True))
    async with contextlib.AsyncExitStack() as stack:
        await _running(cap, stack)
        now = time.time()
        probe = cap.probe(now)
        assert probe.bytes_total > 0 and probe.audio_at is not None and probe.alive.get("ffmpeg") is True
        await cap._supervise(now)
        health = await broker.kv_get(health_key(SID))
        assert health is not None and health.value["instance"] == host.job_id
        assert health.value["verdict"]["state"] in ("ok", "silent") and health.value["source_kind"] == "file"
        assert host.successors == [], "a healthy capture is left alone"
    await cap.close()


async def test_a_broken_verdict_fails_over_to_a_new_instance(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    host = FakeHost()
    cap = make_capture(broker, host, short_speech[0], options=CaptureOptions(allow_local=True, realtime=True))
    async with contextlib.AsyncExitStack() as stack:
        await _running(cap, stack)
        await cap._supervise(time.time() + 60)  # a minute without audio, the processes still alive
        assert cap.inst.verdict is not None and cap.inst.verdict.broken and "no audio" in cap.inst.verdict.reason
        assert len(host.successors) == 1 and cap.inst.swap is not None
        assert cap.inst.swap.mode == "resume" and cap.inst.swap.trigger == "supervisor"
        assert cap.inst.gate.closed and cap.inst.failovers == 1
        status = await swap_status(broker, SID)
        assert status["swap"]["phase"] == "cut" and status["health"]["verdict"]["state"] == "broken"
        saved = await CaptureStore(broker, SID).load()
        assert saved.handover == {"swap": host.successors[0], "cut": 0, "next_seq": 0}
    await cap.close()


async def test_without_supervise_a_broken_capture_is_only_reported(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    host = FakeHost()
    cap = make_capture(broker, host, short_speech[0], options=CaptureOptions(allow_local=True, realtime=True),
                       settings=SwapSettings(supervise=False))  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        await _running(cap, stack)
        await cap._supervise(time.time() + 60)
        assert cap.inst.verdict is not None and cap.inst.verdict.broken
        assert host.successors == [] and cap.inst.swap is None
        health = await broker.kv_get(health_key(SID))
        assert health is not None and health.value["verdict"]["state"] == "broken"
    await cap.close()
