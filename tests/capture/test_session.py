"""``capture.session``: ``SessionCapture``, the parts assembled. Both sides of a swap in one
process, each a ``SessionCapture`` with a fake host: the owner (old side) accepts a requested swap
and starts the new instance through its host; the new side starts the same recorded file, aligns,
waits for the cut and takes the session over; the owner hands over. Every seq is cut once, by one
of them, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from couchpotato.capture import CaptureOptions
from couchpotato.segmenter import AudioSegment
from couchpotato.testing import synthesize
from couchpotato.urlguard import UrlGuard
from katopotato.api.swaps import request_swap, swap_events, swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore, Outcome, SessionCapture, SwapSettings

from ..conftest import requires_media_tools

pytestmark = [pytest.mark.timeout(180), requires_media_tools]
SID = "swap1"
TEXT = (
    "The city council met on Tuesday evening to discuss the new library. "
    "Several residents asked for longer opening hours on weekends. "
    "The mayor said the budget would be published next month. "
    "A local teacher asked whether the reading room would stay quiet during exams. "
    "The librarian promised a separate room for group work and a quiet floor upstairs. "
    "Everyone agreed to meet again in the spring to look at the plans."
)


@dataclass
class FakeHost:
    """The job's side of one capture instance; ``successor`` starts the new instance of a swap
    as a task of this process, as a capture worker would start its job."""

    job_id: str
    broker: MemoryBroker
    media: Path
    worker: str = "worker-1"
    segments: list[AudioSegment] = field(default_factory=list)
    successors: list[asyncio.Task[Outcome]] = field(default_factory=list)
    new: list[FakeHost] = field(default_factory=list)

    async def emit(self, seg: AudioSegment) -> None:
        self.segments.append(seg)

    async def start_successor(self, swap_id: str) -> str:
        host = FakeHost(f"job-for-{swap_id}", self.broker, self.media, worker="worker-2")
        self.new.append(host)
        runtime = instance(self.broker, self.media, host)
        self.successors.append(asyncio.create_task(_take_over(runtime, swap_id)))
        return host.job_id

    async def cancel_job(self, job_id: str) -> None:
        pass

    async def progress(self, audio_s: float, message: str) -> None:
        pass


async def _take_over(runtime: SessionCapture, swap_id: str) -> Outcome:
    await runtime.store.load()
    try:
        return await runtime.take_over(swap_id)
    finally:
        await runtime.close()


def instance(broker: MemoryBroker, media: Path, host: FakeHost) -> SessionCapture:
    return SessionCapture(
        broker=broker,
        session_id=SID,
        spec=str(media),
        guard=UrlGuard.from_allowlist(""),
        options=CaptureOptions(allow_local=True, realtime=True),
        segmenter=None,
        host=host,
        store=CaptureStore(broker, SID),
        settings=SwapSettings(),
    )


async def media_reached(broker: MemoryBroker, media_s: float) -> None:
    for _ in range(300):
        if (await swap_status(broker, SID))["capture"]["media_s"] >= media_s:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the owner did not reach {media_s} s of media")


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker() as b:
        yield b


async def test_a_swap_hands_the_session_to_the_new_instance(broker: MemoryBroker, media_dir: Path) -> None:
    media = synthesize(TEXT, media_dir / "swap-sides.wav")
    old = FakeHost("job-1", broker, media)
    owner = instance(broker, media, old)
    await owner.store.load()
    owner.store.state.owner = old.job_id
    await owner.store.save()
    run = asyncio.create_task(owner.own())
    try:
        await media_reached(broker, 4.0)
        requested = await request_swap(broker, SID, "test: swap now")
        outcome = await asyncio.wait_for(run, 120)
    finally:
        await owner.close()
    assert outcome.kind == "handed_over" and outcome.swap_id == requested.id
    assert len(old.successors) == 1
    new_outcome = await asyncio.wait_for(old.successors[0], 120)
    assert new_outcome.kind == "ended" and not new_outcome.error
    new = old.new[0]
    seqs = [s.segment.seq for s in old.segments + new.segments]
    assert seqs == list(range(len(seqs))), "every seq once, in order, across both instances"
    assert {s.segment.epoch for s in old.segments} == {0} and {s.segment.epoch for s in new.segments} == {1}
    assert new.segments, "the new instance cut the rest"
    status = await swap_status(broker, SID)
    assert status["swap"]["phase"] == "completed" and status["capture"]["owner"] == new.job_id
    assert [e.type for _, e in await swap_events(broker, SID)] == ["swap_started", "swap_completed"]
    assert status["health"] is not None and status["health"]["instance"] == new.job_id, "supervised to the end"
