"""``capture.state``: the session's capture state and its owner-only store (compare-and-set) on
the memory broker."""

from __future__ import annotations

import pytest

from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureState, CaptureStore, NotOwner
from katopotato.keys import transcript_stream

from .conftest import SID


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
