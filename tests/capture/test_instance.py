"""``capture.instance``: the ``Instance`` record and what every side of an instance does with it
(read chunks with a timeout, take a lead-in before a cut, emit a segment, end with an error),
with a fake host on the memory broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from couchpotato.browser.errors import BrowserCrashed, NoAudio
from couchpotato.decoder import PcmChunk
from couchpotato.errors import NotMedia, SourceNotFound, SourceStalled, SourceUnreachable, UrlRefused
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore, Instance
from katopotato.capture.instance import _Chunks, can_reread, contiguous, instance_failure
from tests.conftest import requires_media_tools

from .conftest import SID, FakeHost, make_capture, owned, segment

pytestmark = pytest.mark.timeout(60)


def test_which_failures_another_instance_can_fix() -> None:
    for e in (SourceStalled("stalled"), SourceUnreachable("reset"), BrowserCrashed("gone")):
        assert instance_failure(e), e
    for e in (NoAudio("silent page"), NotMedia("html"), SourceNotFound("404"), UrlRefused("private")):
        assert not instance_failure(e), e
    assert not instance_failure(RuntimeError("a bug"))


def test_which_sources_can_be_read_again_from_a_past_time() -> None:
    assert can_reread("file", live=False) and can_reread("http", live=False) and can_reread("hls", live=True)
    assert not can_reread("http", live=True) and not can_reread("browser", live=True)
    assert not can_reread("stdin", live=False)


def test_contiguous_is_the_last_unbroken_run() -> None:
    ones = np.ones(100, dtype=np.float32)
    buffer = [PcmChunk(0, ones), PcmChunk(500, ones), PcmChunk(600, 2 * ones), PcmChunk(700, 3 * ones)]
    audio = contiguous(buffer)
    assert audio.start == 500 and len(audio.samples) == 300
    assert audio.samples[0] == 1 and audio.samples[-1] == 3


async def _pcm(chunks: list[PcmChunk], gap_s: float, error: BaseException | None = None) -> AsyncIterator[PcmChunk]:
    for c in chunks:
        await asyncio.sleep(gap_s)
        yield c
    if error is not None:
        raise error


async def test_chunks_time_out_without_losing_a_chunk() -> None:
    data = [PcmChunk(i * 10, np.full(10, i, dtype=np.float32)) for i in range(3)]
    chunks = _Chunks(_pcm(data, 0.2))
    got: list[PcmChunk | None] = [await chunks.get(0.01)]  # not there yet
    while len([c for c in got if c is not None]) < 3:
        got.append(await chunks.get(0.05))
    assert got[0] is None and [c.start_sample for c in got if c is not None] == [0, 10, 20]
    with pytest.raises(StopAsyncIteration):
        while True:
            await chunks.get(1.0)
    assert chunks.done and await chunks.get(0.01) is None  # after the end: only waits


async def test_chunks_raise_the_captures_error_once() -> None:
    chunks = _Chunks(_pcm([PcmChunk(0, np.zeros(10, dtype=np.float32))], 0.0, SourceStalled("no audio for 30 s")))
    assert await chunks.get(1.0) is not None
    with pytest.raises(SourceStalled):
        await chunks.get(1.0)
    assert chunks.done
    await chunks.close()


def test_the_record_starts_empty() -> None:
    inst = Instance()
    assert inst.cap is None and inst.swap is None and inst.segmenter is None and not inst.gate.closed
    assert (inst.shift, inst.trim_below, inst.pushed_end, inst.bytes_total, inst.failovers) == (0, 0, 0, 0, 0)
    assert Instance().recent is not inst.recent, "no state shared between instances"


async def test_lead_in_is_the_contiguous_audio_just_before_the_cut(broker: MemoryBroker) -> None:
    cap = make_capture(broker, FakeHost())
    cap.inst.shift, cap.inst.trim_below = 1000, 1500  # session sample = own sample + 1000
    ramp = np.arange(200, dtype=np.float32)
    mine = [PcmChunk(0, ramp), PcmChunk(200, ramp), PcmChunk(400, ramp)]  # session 1000..1600
    lead = cap._lead_in(mine, 300)
    assert lead is not None and lead.start_sample == 1200 and len(lead.samples) == 300
    assert lead.samples[0] == 0 and lead.samples[-1] == 99  # session 1200..1499: own 200..499
    holey = [PcmChunk(0, ramp), PcmChunk(300, ramp)]  # a hole at own 200..300 (session 1200..1300)
    lead = cap._lead_in(holey, 400)
    assert lead is not None and lead.start_sample == 1300 and len(lead.samples) == 200
    assert cap._lead_in([PcmChunk(600, ramp)], 300) is None  # all of it after the cut
    await cap.close()


async def test_emit_hands_the_segment_over_and_saves_where_the_session_is(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap = await owned(make_capture(broker, host))
    cap.inst.audio_at, cap.inst.pushed_end = 1_000.0, 3 * 16_000
    await cap._emit(segment(0, 0.0, 2.0))
    assert [s.segment.seq for s in host.segments] == [0]
    saved = await CaptureStore(broker, SID).load()
    assert saved.next_seq == 1 and saved.resume_sample == 2 * 16_000
    assert saved.resume_wall == pytest.approx(999.0)  # 1 s of audio past the segment had arrived
    assert cap.inst.last_segment_at is not None
    await cap.close()


async def test_ending_with_an_error_releases_what_a_cut_held(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap = await owned(make_capture(broker, host))
    cap.inst.gate.close(16_000)
    assert not cap.inst.gate.offer(segment(0, 1.0, 2.0))  # after the cut: held
    cap.inst.capture_error = SourceStalled("no audio for 30 s")
    outcome = await cap._end_with_error()
    assert outcome.kind == "ended" and outcome.error == "no audio for 30 s"
    assert [s.segment.seq for s in host.segments] == [0] and not cap.inst.gate.closed
    await cap.close()


@requires_media_tools
async def test_an_instance_of_a_session_that_had_sound_is_not_judged_no_audio(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    path, _text = short_speech
    for heard in (False, True):
        capture = make_capture(broker, FakeHost(), path)
        await capture.store.load()
        capture.store.state.heard_sound = heard
        try:
            async with contextlib.AsyncExitStack() as stack:
                cap = await capture._enter(stack, capture._direct_options)
                assert cap.options.heard_sound is heard
                assert cap.monitor is not None and cap.monitor.heard_sound is heard
        finally:
            await capture.close()
