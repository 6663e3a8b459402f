from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from couchpotato.corrections import Corrections
from couchpotato.records import Segment, SegmentFailure, SegmentResult, Word
from couchpotato.resequencer import Outcome, Resequencer, ResequencerState


def make_outcomes(n: int, failed: set[int]) -> list[Outcome]:
    out: list[Outcome] = []
    for seq in range(n):
        seg = Segment("s", seq, seq * 2.0, seq * 2.0 + 2.0, seq * 2.0, seq * 2.0 + 2.0)
        if seq in failed:
            out.append(SegmentFailure(seg, "asr_failed"))
        else:
            words = (
                Word(seq * 2.0 + 0.1, seq * 2.0 + 0.5, f" w{seq}a", 0.9),
                Word(seq * 2.0 + 1.0, seq * 2.0 + 1.4, f" w{seq}b", 0.9),
            )
            out.append(SegmentResult(seg, words, "test"))
    return out


def shape(events: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.to_dict().items() if k != "emitted_at"} for e in events]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, set[int], list[int]]:
    n = draw(st.integers(1, 25))
    failed = draw(st.sets(st.integers(0, n - 1), max_size=n))
    order = draw(st.permutations(list(range(n))))
    dups = draw(st.lists(st.integers(0, n - 1), max_size=10))
    positions = [draw(st.integers(0, n + len(dups))) for _ in dups]
    order = list(order)
    for d, p in zip(dups, positions, strict=True):
        order.insert(min(p, len(order)), d)
    return n, failed, order


@given(deliveries())
@settings(max_examples=300)
def test_any_order_and_duplication_gives_the_same_ordered_output(
    case: tuple[int, set[int], list[int]],
) -> None:
    n, failed, order = case
    outcomes = make_outcomes(n, failed)
    reference = Resequencer("s")
    expected: list[Any] = []
    for o in outcomes:
        expected += reference.offer(o, 0.0)
    r = Resequencer("s")
    got: list[Any] = []
    for i in order:
        got += r.offer(outcomes[i], 0.0)
    got += r.finish(n, 0.0)
    seqs = [e.seq for e in got]
    assert seqs == list(range(n)), "every seq exactly once, in order"
    assert shape(got) == shape(expected)
    assert {e.seq for e in got if e.type == "gap"} == failed, "failures are marked, never silent"


@given(deliveries(), st.integers(0, 30))
@settings(max_examples=200)
def test_state_survives_a_json_round_trip_mid_stream(case: tuple[int, set[int], list[int]], cut: int) -> None:
    n, failed, order = case
    outcomes = make_outcomes(n, failed)
    straight = Resequencer("s")
    a: list[Any] = []
    for i in order:
        a += straight.offer(outcomes[i], 0.0)
    r = Resequencer("s")
    b: list[Any] = []
    for k, i in enumerate(order):
        if k == cut:  # another process picks up from the serialised state
            r = Resequencer("s", state=ResequencerState.from_dict(json.loads(json.dumps(r.state.to_dict()))))
        b += r.offer(outcomes[i], 0.0)
    assert shape(a) == shape(b)


def test_a_missing_seq_becomes_a_gap_after_the_timeout() -> None:
    outcomes = make_outcomes(4, set())
    r = Resequencer("s", gap_timeout_s=10)
    assert r.offer(outcomes[0], 0.0)[0].seq == 0
    assert r.offer(outcomes[2], 1.0) == []
    assert r.offer(outcomes[3], 2.0) == []
    assert r.expire(5.0) == []
    events = r.expire(11.5)
    assert [(e.type, e.seq) for e in events] == [("gap", 1), ("segment", 2), ("segment", 3)]
    assert events[0].reason == "timeout"
    assert (events[0].start, events[0].end) == (2.0, 4.0)
    assert r.offer(outcomes[1], 12.0) == [], "a late result for a gapped seq is not emitted twice"


def test_finish_gaps_what_never_arrived() -> None:
    outcomes = make_outcomes(3, set())
    r = Resequencer("s")
    r.offer(outcomes[2], 0.0)
    events = r.finish(3, 1.0)
    assert [(e.type, e.seq) for e in events] == [("gap", 0), ("gap", 1), ("segment", 2)]


def test_overlap_words_are_merged_not_doubled() -> None:
    # A cut inside speech at t=5.0 with 0.6 s of overlap: both segments heard "budget".
    a = Segment("s", 0, 0.0, 5.3, 0.0, 5.0)
    b = Segment("s", 1, 4.7, 9.0, 5.0, 9.0)
    ra = SegmentResult(
        a, (Word(3.9, 4.4, " city", 0.9), Word(4.5, 4.98, " budget", 0.9), Word(5.0, 5.3, " and", 0.4)), "t"
    )
    rb = SegmentResult(
        b, (Word(4.7, 4.99, " budget", 0.8), Word(5.05, 5.3, " and", 0.9), Word(5.4, 5.9, " roads", 0.9)), "t"
    )
    r = Resequencer("s")
    ev = r.offer(rb, 0.0) + r.offer(ra, 0.0)
    assert [e.text for e in ev] == ["city budget", "and roads"]


def test_same_word_on_both_sides_of_a_cut_is_kept_once() -> None:
    a = Segment("s", 0, 0.0, 5.3, 0.0, 5.0)
    b = Segment("s", 1, 4.7, 9.0, 5.0, 9.0)
    ra = SegmentResult(a, (Word(4.5, 4.98, " budget", 0.9),), "t")
    rb = SegmentResult(b, (Word(4.8, 5.2, " budget.", 0.8), Word(5.4, 5.9, " roads", 0.9)), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["budget", "roads"]


def test_corrections_apply_at_commit() -> None:
    seg = Segment("s", 0, 0.0, 3.0, 0.0, 3.0)
    res = SegmentResult(
        seg,
        (Word(0.1, 0.5, " May", 0.9), Word(0.5, 0.9, " repeat", 0.9), Word(1.0, 1.5, " spoke.", 0.9)),
        "t",
    )
    r = Resequencer("s", corrections=Corrections.from_mapping({"may repeat": "Mayor Pete"}))
    (ev,) = r.offer(res, 0.0)
    assert ev.text == "Mayor Pete spoke."
    assert ev.words[0].start == 0.1 and ev.words[-1].end == 1.5


def _w(start: float, word: str) -> Word:
    return Word(start, start + 0.3, f" {word}", 0.9)


def test_a_word_both_decodes_time_on_the_other_side_of_the_cut_is_not_lost() -> None:
    # Cut at 5.0. Segment 0 timed "roads" at 4.9-5.2 (centre past its end: dropped there); segment 1,
    # decoded with a lead-in, timed it at 4.6-4.9 (centre before its start). By time alone it is lost.
    a = Segment("s", 0, 0.0, 5.3, 0.0, 5.0)
    b = Segment("s", 1, 3.5, 9.0, 5.0, 9.0)
    ra = SegmentResult(a, (_w(4.0, "the"), _w(4.45, "old"), Word(4.9, 5.2, " roads", 0.9)), "t")
    rb = SegmentResult(b, (_w(3.95, "the"), _w(4.3, "old"), _w(4.6, "roads"), _w(5.4, "need"), _w(5.8, "work")), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["the old", "roads need work"]


def test_a_word_both_decodes_own_is_not_doubled() -> None:
    # Segment 0 kept "roads" (centre 4.85); segment 1 timed the same word at 5.0-5.3, in its own span.
    a = Segment("s", 0, 0.0, 5.3, 0.0, 5.0)
    b = Segment("s", 1, 3.5, 9.0, 5.0, 9.0)
    ra = SegmentResult(a, (_w(4.0, "the"), _w(4.3, "old"), _w(4.7, "roads")), "t")
    rb = SegmentResult(b, (_w(4.1, "the"), _w(4.5, "old"), _w(5.0, "roads"), _w(5.4, "need"), _w(5.8, "work")), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["the old roads", "need work"]


def test_a_word_said_again_later_is_kept() -> None:
    # "again" really is said twice, the second time well after the first: not a repeat of the cut.
    a = Segment("s", 0, 0.0, 5.0, 0.0, 5.0)
    b = Segment("s", 1, 4.0, 9.0, 5.0, 9.0)
    ra = SegmentResult(a, (_w(3.5, "never"), _w(4.0, "again")), "t")
    rb = SegmentResult(b, (_w(4.0, "again"), _w(5.5, "and"), _w(6.0, "again")), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["never again", "and again"]


def test_after_a_gap_the_segment_keeps_its_own_span() -> None:
    a = Segment("s", 0, 0.0, 5.0, 0.0, 5.0)
    b = Segment("s", 1, 4.0, 9.0, 5.0, 9.0)
    rb = SegmentResult(b, (_w(4.2, "lead"), _w(5.2, "own"), _w(6.0, "words")), "t")
    r = Resequencer("s")
    ev = r.offer(SegmentFailure(a, "asr_failed: x"), 0.0) + r.offer(rb, 0.0)
    assert [(e.type, e.text if e.type == "segment" else "") for e in ev] == [("gap", ""), ("segment", "own words")]


def test_the_tail_round_trips_through_json() -> None:
    r = Resequencer("s")
    r.offer(SegmentResult(Segment("s", 0, 0.0, 5.0, 0.0, 5.0), (_w(1.0, "a"), _w(2.0, "b")), "t"), 0.0)
    again = ResequencerState.from_dict(json.loads(json.dumps(r.state.to_dict())))
    assert again.tail == r.state.tail and len(again.tail) == 2
    old = ResequencerState.from_dict({"next_seq": 1, "last_word": _w(2.0, "b").to_dict()})
    assert [w.word for w in old.tail] == [" b"]


def test_words_the_next_decode_skipped_come_from_the_previous_ones_right_context() -> None:
    # A cut inside speech at 5.0. Segment 1's decode (its audio starts mid-sentence) skipped
    # "longer each"; segment 0 heard them past its cut.
    a = Segment("s", 0, 0.0, 7.0, 0.0, 5.0)
    b = Segment("s", 1, 3.0, 9.0, 5.0, 9.0)
    ra = SegmentResult(a, (_w(4.0, "an"), _w(4.5, "hour"), _w(5.1, "longer"), _w(5.5, "each")), "t")
    rb = SegmentResult(b, (_w(4.45, "hour"), _w(5.9, "he"), _w(6.3, "asked")), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["an hour", "longer each he asked"]


def test_a_word_stretched_over_a_pause_is_still_recognised_at_the_cut() -> None:
    # Whisper lets the last word before a pause end when the next word starts.
    a = Segment("s", 0, 70.0, 76.4, 70.0, 76.4)
    b = Segment("s", 1, 75.5, 80.0, 76.4, 80.0)
    ra = SegmentResult(a, (_w(75.6, "next"), Word(75.92, 76.36, " month.", 0.9)), "t")
    rb = SegmentResult(b, (_w(75.55, "next"), Word(75.89, 77.47, " month.", 0.9), _w(77.87, "Local")), "t")
    r = Resequencer("s")
    ev = r.offer(ra, 0.0) + r.offer(rb, 0.0)
    assert [e.text for e in ev] == ["next month.", "Local"]


def test_a_repeat_whose_last_word_whisper_squeezed_to_nothing_is_still_a_repeat() -> None:
    """Heard on the tuning split (flite awb): the next segment stretched "tomb's" over the pause and
    put "stones." at its end with no length, 0.9 s after the committed one: the run "their tomb's
    stones" repeats the committed words, timed alike at its start, so nothing is doubled."""
    from couchpotato.resequencer import merge_at_cut

    def ws(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
        return tuple(Word(a, b, f" {t}", 0.9) for t, a, b in spec)

    tail = ws(
        ("from", 123.12, 123.40), ("their", 123.40, 123.58), ("tomb's", 123.58, 124.04), ("stones.", 124.04, 124.12)
    )
    words = ws(
        ("from", 123.13, 123.39),
        ("their", 123.39, 123.59),
        ("tomb's", 123.59, 124.93),
        ("stones.", 124.93, 124.93),
        ("A", 125.97, 126.57),
        ("famished", 126.57, 126.89),
    )
    kept = merge_at_cut(tail, words, 124.42, 126.40)
    assert [w.word.strip() for w in kept] == ["A"]
    # a word said twice for real, far from the committed one in time, is kept
    again = ws(("stones.", 126.0, 126.3))
    assert [w.word.strip() for w in merge_at_cut(tail, again, 124.42, 128.0)] == ["stones."]
