from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couchpotato.errors import SerializationError
from couchpotato.records import (
    EndEvent,
    GapEvent,
    Segment,
    SegmentFailure,
    SegmentResult,
    SessionEvent,
    TranscriptEvent,
    Word,
    dumps,
    event_from_dict,
)

times = st.floats(min_value=0, max_value=1e5, allow_nan=False).map(lambda x: round(x, 3))
words = st.builds(Word, times, times, st.text(min_size=1, max_size=12), st.floats(0, 1).map(lambda p: round(p, 4)))
segments = st.builds(
    Segment,
    st.text(max_size=8),
    st.integers(0, 10**6),
    times,
    times,
    times,
    times,
    st.integers(0, 100),
    st.text(max_size=20),
)


@given(segments, st.lists(words, max_size=5))
def test_result_round_trips_through_json(seg: Segment, ws: list[Word]) -> None:
    r = SegmentResult(seg, tuple(ws), "faster-whisper:tiny.en")
    assert SegmentResult.from_dict(json.loads(dumps(r))) == r


@given(segments)
def test_failure_round_trips(seg: Segment) -> None:
    f = SegmentFailure(seg, "asr_failed: boom")
    assert SegmentFailure.from_dict(json.loads(dumps(f))) == f


def test_events_have_the_documented_shape() -> None:
    w = Word(1.0, 1.5, " hello", 0.9)
    seg = json.loads(dumps(TranscriptEvent("s", 3, 1.0, 1.5, "hello", (w,), 1700000000.0)))
    assert seg == {
        "type": "segment",
        "seq": 3,
        "start": 1.0,
        "end": 1.5,
        "text": "hello",
        "words": [{"start": 1.0, "end": 1.5, "word": " hello", "probability": 0.9}],
        "emitted_at": 1700000000.0,
    }
    assert json.loads(dumps(GapEvent("s", 4, 1.5, 2.0, "asr_failed"))) == {
        "type": "gap",
        "seq": 4,
        "start": 1.5,
        "end": 2.0,
        "reason": "asr_failed",
    }
    assert json.loads(dumps(SessionEvent(12.5)))["type"] == "session"
    assert json.loads(dumps(EndEvent()))["type"] == "end"
    for ev in (
        TranscriptEvent("", 3, 1.0, 1.5, "hello", (w,), 5.0),
        GapEvent("", 4, 1.5, 2.0, "x"),
        EndEvent("error", "boom", 3),
    ):
        assert event_from_dict(json.loads(dumps(ev))).to_dict() == ev.to_dict()


@pytest.mark.parametrize("bad", [{"v": 99}, {"session_id": "x"}, [], {"v": 1, "seq": "x"}])
def test_malformed_records_raise_serialization_error(bad: object) -> None:
    with pytest.raises(SerializationError):
        Segment.from_dict(bad)  # type: ignore[arg-type]


def test_unknown_event_type() -> None:
    with pytest.raises(SerializationError, match="unknown event type"):
        event_from_dict({"type": "nope"})
