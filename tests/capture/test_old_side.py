"""``capture.old_side``: the old instance of a swap, with a fake host on the memory broker and no
capture running: it accepts a requested swap (its host starts the new instance) and publishes its
recent audio as the reference, answers a drain, cuts, and follows the swap to either outcome."""

from __future__ import annotations

import time

import numpy as np
import pytest

from couchpotato.errors import SourceStalled
from hotpotato.swap import fail, reference_stream
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore, SwapSettings
from katopotato.capture.session import SessionCapture
from katopotato.drain import Drain

from .conftest import SID, FakeHost, make_capture, owned, segment

pytestmark = pytest.mark.timeout(60)


async def _started(broker: MemoryBroker, host: FakeHost, **kw: object) -> SessionCapture:
    """An owner that accepted a swap requested through the API."""
    cap = await owned(make_capture(broker, host, **kw))  # type: ignore[arg-type]
    cap.inst.recent.append((16_000, np.full(8_000, 0.25, dtype=np.float32), time.time()))
    cap.inst.pushed_end = 24_000
    requested = await request_swap(broker, SID, "test: swap now")
    assert await cap._follow_swap(time.time()) is None
    assert cap.inst.swap is not None and cap.inst.swap.id == requested.id
    return cap


async def _cut(broker: MemoryBroker, host: FakeHost) -> tuple[SessionCapture, str]:
    """An owner that accepted a swap and cut at 2 s, holding one segment after the cut."""
    cap = await _started(broker, host)
    assert cap.inst.swap is not None
    await cap._cut(32_000, "quiet")
    assert cap.inst.gate.closed and cap.inst.swap.phase == "cut"
    assert not cap.inst.gate.offer(segment(0, 2.0, 3.0)), "held until the outcome"
    return cap, cap.inst.swap.id


async def test_a_requested_swap_is_accepted_and_the_new_instance_started(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap = await _started(broker, host)
    assert cap.inst.swap is not None
    swap_id = cap.inst.swap.id
    assert host.successors == [swap_id], "the host enqueued the new instance"
    status = await swap_status(broker, SID)
    assert status["swap"]["phase"] == "starting" and status["swap"]["new_job"] == f"job-for-{swap_id}"
    assert status["swap"]["old_position"] == 24_000
    assert [e.type for _, e in await swap_events(broker, SID)] == ["swap_started"]
    await cap.publisher_flush()
    ref = await broker.read(reference_stream(SID, swap_id))
    assert [e.data["s"] for e in ref] == [16_000], "the recent audio went out as the reference"
    await cap.close()


async def test_a_drain_swaps_away_or_hands_the_job_back(broker: MemoryBroker) -> None:
    drain, handed_back = Drain(), []
    drain._stop = lambda: handed_back.append(True)
    host = FakeHost()
    cap = await owned(make_capture(broker, host, drain=drain))
    await cap._drain_check()
    assert host.successors == [] and cap.inst.swap is None, "nothing before the worker drains"
    drain.requested.set()
    await cap._drain_check()
    assert cap.inst.swap is not None and cap.inst.swap.trigger == "drain" and host.successors == [cap.inst.swap.id]
    await cap.close()

    dead = await owned(make_capture(broker, FakeHost(job_id="job-2"), drain=drain))
    dead.inst.capture_error = SourceStalled("no audio")
    await dead._drain_check()
    assert handed_back == [True] and dead.inst.swap is None, "a failed instance cannot hand over"
    await dead.close()


async def test_the_cut_holds_back_what_follows_and_a_failed_swap_releases_it(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap, swap_id = await _cut(broker, host)
    saved = await CaptureStore(broker, SID).load()
    assert saved.handover == {"swap": swap_id, "cut": 32_000, "next_seq": 0} and saved.resume_sample == 32_000
    await cap.swaps.update(fail(swap_id, now=time.time(), error="the new instance could not align"))
    assert await cap._follow_swap(time.time()) is None, "this instance carries on"
    assert [s.segment.seq for s in host.segments] == [0] and not cap.inst.gate.closed
    assert (await CaptureStore(broker, SID).load()).handover is None, "the cut was taken back"
    assert cap.inst.swap is None
    await cap.close()


async def test_the_new_owner_after_the_cut_means_handed_over(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap, swap_id = await _cut(broker, host)
    new_store = CaptureStore(broker, SID)  # the new instance commits: it owns the state now
    await new_store.load()
    new_store.state.owner, new_store.state.epoch = f"job-for-{swap_id}", 1
    await new_store.save()
    outcome = await cap._follow_swap(time.time())
    assert outcome is not None and (outcome.kind, outcome.swap_id) == ("handed_over", swap_id)
    assert host.segments == [], "what was held after the cut is the new instance's to cut"
    assert (await swap_status(broker, SID))["swap"]["phase"] == "completed"  # swap_completed: the commit's
    assert await broker.read(reference_stream(SID, swap_id)) == [], "the reference stream is dropped"
    await cap.close()


async def test_a_new_instance_that_never_aligns_fails_the_swap(broker: MemoryBroker) -> None:
    host = FakeHost()
    cap = await _started(broker, host, settings=SwapSettings(start_timeout_s=1.0))
    assert cap.inst.swap is not None
    new_job = cap.inst.swap.new_job
    assert await cap._follow_swap(time.time() + 60) is None
    status = await swap_status(broker, SID)
    assert status["swap"]["phase"] == "failed" and "not aligned" in status["swap"]["error"]
    assert host.cancelled == [new_job] and cap.inst.swap is None
    await cap.close()
