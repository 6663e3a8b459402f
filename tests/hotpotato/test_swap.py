"""The swap protocol's shared state on both brokers: transitions guarded by phase and id, one swap at
a time, events appended atomically with the state, ownership moved by one compare-and-set, the old
instance's reference audio, and the API functions (request, status, events)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from couchpotato.records import SessionEvent
from hotpotato.errors import SwapRefused
from hotpotato.records import SwapState
from hotpotato.swap import (
    ReferencePublisher,
    ReferenceReader,
    SwapStore,
    accept,
    aligned,
    complete,
    completed_event,
    cut,
    fail,
    new_instance_turn,
    request,
)
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import Broker
from katopotato.capture import CaptureState, CaptureStore, NotOwner
from katopotato.keys import transcript_stream
from katopotato.transcription import transcript_events

SID = "sess1"


def store(broker: Broker) -> SwapStore:
    return SwapStore(broker, SID, transcript_stream(SID))


async def turn(s: SwapStore, swap_id: str = "f1") -> str:
    return new_instance_turn((await s.load())[0], swap_id)


async def stream_types(broker: Broker) -> list[str]:
    return [e.data["type"] for e in await broker.read(transcript_stream(SID), "0", count=1000)]


async def test_a_requested_swap_goes_through_every_phase_with_its_events(broker: Broker) -> None:
    s = store(broker)
    now = time.time()
    req = await s.update(request(SID, "api", "operator asked", now))
    assert req is not None and req.phase == "requested" and await stream_types(broker) == []
    with pytest.raises(SwapRefused, match="already in progress"):
        await s.update(request(SID, "api", "again", now))
    started = await s.update(accept(req, own=False, now=now, old_job="old", new_job="new", old_epoch=0,
                                    old_position=160_000))  # fmt: skip
    assert started is not None and started.phase == "starting" and await stream_types(broker) == ["swap_started"]
    # a transition for another swap, or from the wrong phase, changes nothing
    assert await s.update(cut("other", now=now, cut_sample=1, next_seq=1)) is None
    assert await s.update(aligned("other", now=now, alignment={}, from_sample=0, worker="w")) is None
    al = await s.update(aligned(req.id, now=now, alignment={"method": "xcorr"}, from_sample=150_000, worker="w2"))
    assert al is not None and al.phase == "aligned" and al.from_sample == 150_000 and al.new_worker == "w2"
    assert await s.update(aligned(req.id, now=now, alignment={}, from_sample=0, worker="w3")) is None  # once
    c = await s.update(cut(req.id, now=now, cut_sample=170_000, next_seq=9))
    assert c is not None and c.phase == "cut" and c.cut_sample == 170_000 and c.next_seq == 9
    done = await s.update(complete(req.id, now=now, lost_s=0.0, alignment=None, worker="w2"))
    assert done is not None and done.phase == "completed" and done.alignment == {"method": "xcorr"}
    assert await s.update(fail(req.id, now=now, error="late")) is None  # a completed swap cannot fail
    record, _ = await store(broker).load()
    assert record.current is not None and record.current.phase == "completed"
    assert await stream_types(broker) == ["swap_started"]  # swap_completed comes with the ownership commit


async def test_failure_is_reported_once_and_frees_the_session_for_the_next_swap(broker: Broker) -> None:
    s = store(broker)
    now = time.time()
    own = SwapState("a1", SID, "requested", "supervisor", "ffmpeg exited", mode="resume", requested_at=now,
                    detection_s=0.8)  # fmt: skip
    started = await s.update(accept(own, own=True, now=now, old_job="o", new_job="n", old_epoch=2,
                                    old_position=32_000, cut_sample=30_000, next_seq=7))  # fmt: skip
    assert started is not None and started.phase == "cut" and started.cut_sample == 30_000 and started.next_seq == 7
    failed = await s.update(fail("a1", now=now, error="the new instance could not start"))
    assert failed is not None and failed.phase == "failed"
    assert await s.update(fail("a1", now=now, error="twice")) is None  # reported once
    events = [e.data for e in await broker.read(transcript_stream(SID), "0")]
    assert [e["type"] for e in events] == ["swap_started", "swap_failed"]
    assert events[0]["detection_s"] == 0.8 and events[0]["cut_s"] == pytest.approx(30_000 / 16_000)
    assert events[1]["error"] == "the new instance could not start" and events[1]["epoch"] == 2
    nxt = await s.update(request(SID, "api", "try again", now))
    assert nxt is not None and nxt.id != "a1"
    record, _ = await s.load()
    assert [h["id"] for h in record.history] == ["a1"] and record.history[0]["phase"] == "failed"


async def test_a_new_instance_waits_for_a_swap_not_recorded_yet_and_stops_once_it_is_over(broker: Broker) -> None:
    """A failover's new job can start before the old instance records the swap (it enqueues the job
    first): that is "wait", not "over"; "over" only once the swap ended or another replaced it."""
    s = store(broker)
    now = time.time()
    assert await turn(s) == "wait"  # nothing recorded at all yet
    earlier = await s.update(request(SID, "api", "an earlier swap", now))
    assert earlier is not None
    assert await turn(s) == "wait"  # another swap is current: ours is not recorded yet
    assert await turn(s, earlier.id) == "wait"  # requested, not accepted
    await s.update(fail(earlier.id, now=now, error="gave up"))
    assert await turn(s, earlier.id) == "over"
    own = SwapState("f1", SID, "requested", "failover", "ffmpeg exited", mode="resume", requested_at=now)
    await s.update(accept(own, own=True, now=now, old_job="o", new_job="n", old_epoch=0, old_position=16_000,
                          cut_sample=16_000, next_seq=1))  # fmt: skip
    assert await turn(s) == "go"
    await s.update(complete("f1", now=now, lost_s=0.0, alignment=None, worker="w"))
    assert await turn(s) == "over"
    await s.update(request(SID, "api", "the next one", now))
    assert await turn(s) == "over"  # replaced: found in the history
    assert await turn(s, "never-seen") == "wait"


async def test_an_unaccepted_request_goes_stale(broker: Broker) -> None:
    s = store(broker)
    old = time.time() - 120
    req = await s.update(request(SID, "api", "nobody home", old))
    assert req is not None
    assert await s.update(accept(req, own=False, now=time.time(), old_job="o", new_job="n", old_epoch=0,
                                 old_position=0)) is None  # fmt: skip
    assert (await s.update(request(SID, "api", "fresh", time.time()))) is not None


async def test_concurrent_transitions_one_wins(broker: Broker) -> None:
    s = store(broker)
    now = time.time()
    req = await s.update(request(SID, "api", "x", now))
    assert req is not None
    await s.update(accept(req, own=False, now=now, old_job="o", new_job="n", old_epoch=0, old_position=0))
    results = await asyncio.gather(
        *(store(broker).update(aligned(req.id, now=now, alignment={"offset": i}, from_sample=i, worker=f"w{i}"))
          for i in range(8)),
        store(broker).update(fail(req.id, now=now, error="timeout")),
    )  # fmt: skip
    winners = [r for r in results if r is not None]
    record, _ = await s.load()
    assert record.current is not None
    assert len([w for w in winners if w.phase == "aligned"]) <= 1
    if record.current.phase == "failed":
        assert (await stream_types(broker)).count("swap_failed") == 1


async def test_ownership_moves_by_one_compare_and_set(broker: Broker) -> None:
    """The old instance's cut and the new instance's commit race a rollback: exactly one wins."""
    old, new = CaptureStore(broker, SID), CaptureStore(broker, SID)
    old.state = CaptureState(next_seq=5, resume_sample=80_000, owner="old-job", announced=True)
    await old.save(entries=[SessionEvent(1.0, SID).to_dict()])
    old.state.handover = {"swap": "s1", "cut": 80_000, "next_seq": 5}
    await old.save()
    st = await new.load()
    assert st.handover == {"swap": "s1", "cut": 80_000, "next_seq": 5}
    st.owner, st.epoch, st.handover = "new-job", st.epoch + 1, None
    swap = SwapState("s1", SID, "cut", "api", "x", started_at=time.time())
    event = completed_event(swap, now=time.time(), epoch=1, cut_sample=80_000, next_seq=5, lost_s=0.0,
                            alignment=None, worker="w2")  # fmt: skip
    await new.save(entries=[event.to_dict()])
    old.state.handover = None
    with pytest.raises(NotOwner):
        await old.save()  # the rollback comes too late: the new instance owns the session
    assert (await CaptureStore(broker, SID).load()).owner == "new-job"
    assert await stream_types(broker) == ["session", "swap_completed"]


async def test_reference_audio_round_trips_in_order_and_restarts_on_a_jump(broker: Broker) -> None:
    stream = f"swapaudio:{SID}:x"
    pub = ReferencePublisher(broker, stream, batch_samples=4000)
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 0.2, 20_000)).astype(np.float32)
    for i in range(0, 20_000, 1000):
        await pub.add(50_000 + i, audio[i : i + 1000], 1000.0 + i / 16_000)
    await pub.flush()
    reader = ReferenceReader(broker, stream)
    assert await reader.poll() == 20_000
    got = reader.audio()
    assert got is not None and got.start == 50_000 and len(got.samples) == 20_000
    assert np.max(np.abs(got.samples - np.clip(audio, -1, 1))) < 1 / 16_000
    assert reader.arrivals is not None and reader.arrivals[-1][0] == 70_000
    await pub.add(200_000, audio[:1000], 2000.0)  # the old instance's clock jumped
    await pub.flush()
    await reader.poll()
    got = reader.audio()
    assert got is not None and got.start == 200_000 and len(got.samples) == 1000


async def test_api_request_status_and_events(broker: Broker) -> None:
    with pytest.raises(SwapRefused, match="not being captured"):
        await request_swap(broker, SID)
    cs = CaptureStore(broker, SID)
    cs.state = CaptureState(owner="job1", announced=False)
    await cs.save()
    with pytest.raises(SwapRefused, match="still starting"):
        await request_swap(broker, SID)
    cs.state.announced = True
    await cs.save(entries=[SessionEvent(1.0, SID).to_dict()])
    swap = await request_swap(broker, SID, "operator: the picture froze")
    assert swap.phase == "requested" and swap.trigger == "api"
    with pytest.raises(SwapRefused, match="already in progress"):
        await request_swap(broker, SID)
    status = await swap_status(broker, SID)
    assert status["swap"]["id"] == swap.id and status["capture"]["owner"] == "job1" and status["health"] is None
    s = store(broker)
    await s.update(accept(swap, own=False, now=time.time(), old_job="job1", new_job="job2", old_epoch=0,
                          old_position=0))  # fmt: skip
    await s.update(fail(swap.id, now=time.time(), error="alignment not confident"))
    events = await swap_events(broker, SID)
    assert [e.type for _, e in events] == ["swap_started", "swap_failed"]
    assert events[1][1].details["error"] == "alignment not confident"
    # the transcript reader skips swap events (it yields transcript events only)
    seen = [ev async for _, ev in transcript_events(broker, SID, follow=False)]
    assert [type(e).__name__ for e in seen] == ["SessionEvent"]
    cs.state.source_done = True
    await cs.save()
    with pytest.raises(SwapRefused, match="ended"):
        await request_swap(broker, SID)
