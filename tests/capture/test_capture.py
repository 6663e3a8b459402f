"""The capture package's parts on the memory broker, each with a fake host: the capture state and
its owner-only store, the owner's run of a real recorded file (FFmpeg, the VAD), its supervision,
and the API's swap helpers on the state it leaves."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from couchpotato.capture import CaptureOptions
from couchpotato.segmenter import AudioSegment
from couchpotato.urlguard import UrlGuard
from hotpotato.errors import SwapRefused
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureState, CaptureStore, NotOwner, SessionCapture, SwapSettings
from katopotato.keys import health_key, transcript_stream

from ..conftest import requires_media_tools

pytestmark = pytest.mark.timeout(120)
SID = "cap1"


@dataclass
class FakeHost:
    """The job's side of a capture instance, recorded instead of done."""

    job_id: str = "job-1"
    worker: str = "worker-1"
    segments: list[AudioSegment] = field(default_factory=list)
    successors: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    progress_s: list[float] = field(default_factory=list)

    async def emit(self, seg: AudioSegment) -> None:
        self.segments.append(seg)

    async def start_successor(self, swap_id: str) -> str:
        self.successors.append(swap_id)
        return f"job-for-{swap_id}"

    async def cancel_job(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    async def progress(self, audio_s: float, message: str) -> None:
        self.progress_s.append(audio_s)


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker() as b:
        yield b


# --- state and store ------------------------------------------------------------------------------


def test_capture_state_round_trips() -> None:
    st = CaptureState(next_seq=7, resume_sample=16_000, media_epoch=1.5, epoch=2, announced=True, owner="j",
                      clock={"sample": 0, "pts": 0.0}, handover={"swap": "s", "cut": 9, "next_seq": 7},
                      source_kind="hls", heard_sound=True)  # fmt: skip
    again = CaptureState.from_dict(st.to_dict())
    assert again == st


async def test_only_the_owner_writes_the_state(broker: MemoryBroker) -> None:
    mine, theirs = CaptureStore(broker, SID), CaptureStore(broker, SID)
    await mine.load()
    mine.state.owner = "job-1"
    await mine.save(entries=[{"type": "status", "status": "running"}])
    assert [e.data["type"] for e in await broker.read(transcript_stream(SID))] == ["status"]
    await theirs.load()
    theirs.state.owner = "job-2"
    await theirs.save()  # a takeover: the other instance now owns it
    mine.state.next_seq = 3
    with pytest.raises(NotOwner):
        await mine.save()
    assert (await CaptureStore(broker, SID).load()).owner == "job-2"


# --- the owner's run, supervised ------------------------------------------------------------------


def _capture(broker: MemoryBroker, path: Path, host: FakeHost, store: CaptureStore) -> SessionCapture:
    return SessionCapture(
        broker=broker,
        session_id=SID,
        spec=str(path),
        guard=UrlGuard.from_allowlist(""),
        options=CaptureOptions(allow_local=True),
        segmenter=None,
        host=host,
        store=store,
        settings=SwapSettings(),
    )


@requires_media_tools
async def test_the_owner_cuts_a_recorded_file_into_segments(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    path, _text = short_speech
    host, store = FakeHost(), CaptureStore(broker, SID)
    await store.load()
    store.state.owner = host.job_id
    await store.save()
    runtime = _capture(broker, path, host, store)
    try:
        outcome = await runtime.own()
        probe = runtime.probe(time.monotonic())
        await runtime._publish_health(probe, runtime.supervisor.observe(probe))
    finally:
        await runtime.close()
    assert outcome.kind == "ended" and not outcome.error
    seqs = [s.segment.seq for s in host.segments]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 2, "every segment, in order, once"
    assert all(s.segment.epoch == 0 and s.segment.keep_end > s.segment.keep_start for s in host.segments)
    st = store.state
    assert st.announced and st.next_seq == len(seqs) and st.owner == host.job_id and st.source_kind == "file"
    assert st.heard_sound and (await CaptureStore(broker, SID).load()).heard_sound, "kept for later instances"
    assert st.resume_sample >= round(host.segments[-1].segment.keep_end * 16_000) - 1
    assert probe.bytes_total > 0
    # the supervision published what it saw, and the API helpers read the state the run left
    status = await swap_status(broker, SID)
    assert status["capture"]["next_seq"] == len(seqs) and status["swap"] is None
    health = await broker.kv_get(health_key(SID))
    assert health is not None and status["health"] == health.value
    assert health.value["instance"] == host.job_id and health.value["probe"]["bytes_total"] == probe.bytes_total


@requires_media_tools
async def test_an_instance_of_a_session_that_had_sound_is_not_judged_no_audio(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    path, _text = short_speech
    for heard in (False, True):
        host, store = FakeHost(), CaptureStore(broker, f"{SID}-{heard}")
        await store.load()
        store.state.heard_sound = heard
        runtime = _capture(broker, path, host, store)
        runtime.sid = store.session_id
        try:
            async with contextlib.AsyncExitStack() as stack:
                cap = await runtime._enter(stack, runtime._direct_options)
                assert cap.options.heard_sound is heard
                assert cap.monitor is not None and cap.monitor.heard_sound is heard
        finally:
            await runtime.close()


# --- the API's swap helpers -----------------------------------------------------------------------


async def test_a_swap_is_refused_until_the_session_captures_and_after_it_ended(broker: MemoryBroker) -> None:
    with pytest.raises(SwapRefused, match="not being captured"):
        await request_swap(broker, SID)
    store = CaptureStore(broker, SID)
    await store.load()
    await store.save()
    with pytest.raises(SwapRefused, match="still starting"):
        await request_swap(broker, SID)
    store.state.announced = True
    await store.save()
    swap = await request_swap(broker, SID, "test: swap now", trigger="api")
    assert swap.phase == "requested" and swap.trigger == "api"
    with pytest.raises(SwapRefused):
        await request_swap(broker, SID)  # one at a time
    assert (await swap_status(broker, SID))["swap"]["id"] == swap.id
    assert await swap_events(broker, SID) == []  # events start when the capture instance accepts it
    store.state.source_done = True
    await store.save()
    with pytest.raises(SwapRefused, match="ended"):
        await request_swap(broker, SID)
