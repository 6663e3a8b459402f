"""``capture.new_side``: the new instance of a swap with a fake host, for the ways it does not take
the session: its swap ended before it started, and a source it cannot start. (Taking the session
over from a running owner is ``test_swap_sides``, both sides assembled.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hotpotato.swap import fail
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore

from .conftest import SID, FakeHost, make_capture, owned

pytestmark = pytest.mark.timeout(60)


async def _accepted(broker: MemoryBroker) -> tuple[str, FakeHost]:
    """A swap requested through the API and accepted by the owner: the new instance's turn."""
    old = FakeHost()
    owner = await owned(make_capture(broker, old))
    await request_swap(broker, SID, "test: swap now")
    await owner._follow_swap(time.time())
    await owner.close()
    assert len(old.successors) == 1
    return old.successors[0], FakeHost(job_id=f"job-for-{old.successors[0]}", worker="worker-2")


async def test_a_swap_that_ended_before_the_new_instance_started_is_stale(broker: MemoryBroker) -> None:
    swap_id, host = await _accepted(broker)
    owner = make_capture(broker, FakeHost())
    await owner.swaps.update(fail(swap_id, now=time.time(), error="the old instance gave up"))
    new = make_capture(broker, host)
    await new.store.load()
    started = time.monotonic()
    outcome = await new.take_over(swap_id)
    await new.close()
    assert (outcome.kind, outcome.swap_id) == ("stale", swap_id)
    assert time.monotonic() - started < 2.0, "it did not wait for an acceptance that cannot come"
    assert host.segments == [] and (await CaptureStore(broker, SID).load()).owner == "job-1"


async def test_a_new_instance_that_cannot_start_fails_the_swap(broker: MemoryBroker, tmp_path: Path) -> None:
    swap_id, host = await _accepted(broker)
    new = make_capture(broker, host, tmp_path / "gone.wav")
    await new.store.load()
    outcome = await new.take_over(swap_id)
    await new.close()
    assert outcome.kind == "failed" and outcome.swap_id == swap_id and "could not start" in outcome.error
    status = await swap_status(broker, SID)
    assert status["swap"]["phase"] == "failed" and "gone.wav" in status["swap"]["error"]
    assert [e.type for _, e in await swap_events(broker, SID)] == ["swap_started", "swap_failed"]
    assert status["capture"]["owner"] == "job-1", "the old instance keeps the session"
