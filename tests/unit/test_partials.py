"""Interim text: which drafts become partials, and how many of their words are stable."""

from __future__ import annotations

from couchpotato.formats import Writer
from couchpotato.partials import DraftPacer, Drafts, agreed_prefix
from couchpotato.records import PartialEvent, Segment, Word, event_from_dict


def seg(seq: int, keep_start: float = 0.0) -> Segment:
    return Segment("s", seq, max(0.0, keep_start - 1), 9.0, keep_start, 9.0)


def words(*spelt: str, start: float = 0.0) -> list[Word]:
    return [Word(start + i * 0.3, start + i * 0.3 + 0.25, f" {w}", 0.9) for i, w in enumerate(spelt)]


def one(events: list[PartialEvent]) -> PartialEvent:
    assert len(events) == 1, events
    return events[0]


def test_drafts_grow_a_revision_and_say_which_words_two_drafts_agree_on() -> None:
    d = Drafts("s")
    first = one(d.update(seg(0), words("The", "city"), 0, 1.0))
    assert (first.revision, first.stable, first.text) == (1, 0, "The city")
    second = one(d.update(seg(0), words("the", "city,", "council", "met"), 0, 2.0))
    assert (second.revision, second.stable) == (2, 2)  # case and commas aside
    assert d.update(seg(0), words("The", "city", "council", "met."), 0, 3.0) == [], "nothing new"
    changed = one(d.update(seg(0), words("The", "city", "counsel", "met", "on"), 0, 4.0))
    assert changed.stable == 2


def test_a_new_seq_starts_again_and_a_committed_seq_gets_no_partial() -> None:
    d = Drafts("s")
    assert one(d.update(seg(0), words("one"), 0, 1.0)).seq == 0
    later = one(d.update(seg(1, keep_start=2.0), words("two", "three", start=2.0), 1, 2.0))
    assert (later.seq, later.revision, later.stable) == (1, 1, 0)
    assert d.update(seg(1, keep_start=2.0), words("two", "three", "four", start=2.0), 2, 3.0) == [], (
        "seq 1 was committed meanwhile"
    )


def test_a_draft_keeps_only_the_words_its_segment_owns() -> None:
    d = Drafts("s")
    ev = one(d.update(seg(3, keep_start=1.0), words("equal.", "Now", "we", start=0.6), 3, 1.0))
    # "equal." (centre 0.725) lies in the lead-in, which the previous segment owns
    assert ev.text == "Now we"


def test_after_a_cut_a_draft_shows_the_words_of_the_segment_still_being_decoded() -> None:
    # seq 0 (from 0 s) was drafted while open as "Four score"; then cut at 1.5 s with "and seven"
    # said in its last half second. The first draft of seq 1 hears them in its lead-in.
    d = Drafts("s")
    one(d.update(seg(0), words("Four", "score"), 0, 1.0))
    lead_in_and_open = words("Four", "score", "and", "seven", "years", start=0.0)  # "years" at 1.2–1.45
    lead_in_and_open[-1] = Word(1.6, 1.85, " years", 0.9)
    prev, now = d.update(seg(1, keep_start=1.5), lead_in_and_open, 0, 2.0)
    assert (prev.seq, prev.revision, prev.stable, prev.text) == (0, 2, 2, "Four score and seven")
    assert (now.seq, now.revision, now.text) == (1, 1, "years")
    # once seq 0 commits, only the open seq's partials go on
    more = [*lead_in_and_open, Word(1.9, 2.1, " ago", 0.9)]
    assert [e.seq for e in d.update(seg(1, keep_start=1.5), more, 1, 3.0)] == [1]


def test_a_seq_skipped_by_the_drafts_gets_no_partial_from_a_later_lead_in() -> None:
    # seq 1 was never drafted: its span is unknown, so the lead-in of seq 2 publishes nothing for it
    d = Drafts("s")
    one(d.update(seg(0), words("one"), 0, 1.0))
    assert [e.seq for e in d.update(seg(2, keep_start=3.0), words("two", "three", start=2.9), 0, 2.0)] == [2]


def test_partials_round_trip_and_reach_only_jsonl() -> None:
    ev = PartialEvent("s", 4, 1.0, 2.0, "Now we", tuple(words("Now", "we", start=1.0)), 5.0, 3, 1)
    assert PartialEvent.from_dict(ev.to_dict()) == PartialEvent("", 4, 1.0, 2.0, "Now we", ev.words, 5.0, 3, 1)
    assert Writer("jsonl").write(ev).startswith('{"type":"partial","seq":4')
    assert Writer("text").write(ev) == Writer("srt").write(ev) == Writer("vtt").write(ev) == ""
    assert agreed_prefix(("a", "b", "c"), ("a", "b", "x")) == 2


def test_a_partial_is_not_a_transcript_event() -> None:
    try:
        event_from_dict({"type": "partial", "seq": 0})
    except Exception as e:  # durable readers refuse it: partials are live-only
        assert "partial" in str(e)
    else:
        raise AssertionError("a partial decoded as a durable transcript event")


def test_the_pacer_drafts_at_most_every_interval_and_only_when_the_audio_grew() -> None:
    p = DraftPacer(interval_s=0.75, min_growth_s=0.3)
    assert p.due(0.0) and p.worth(Segment("s", 0, 0.0, 2.0, 0.0, 2.0))
    p.started(0.0, Segment("s", 0, 0.0, 2.0, 0.0, 2.0))
    assert not p.due(0.5) and p.due(0.75)
    assert not p.worth(Segment("s", 0, 0.0, 2.2, 0.0, 2.2)), "0.2 s more audio: not worth a decode"
    assert p.worth(Segment("s", 0, 0.0, 2.35, 0.0, 2.35))
    assert p.worth(Segment("s", 1, 1.5, 1.7, 2.0, 1.7)), "a new seq is always worth its first draft"


def test_a_cut_makes_a_draft_due_at_once() -> None:
    p = DraftPacer(interval_s=0.75, min_growth_s=0.3)
    p.started(0.0, Segment("s", 4, 0.0, 2.0, 0.0, 2.0))
    assert not p.due(0.2, open_seq=4), "the same open segment waits for the interval"
    assert p.due(0.2, open_seq=5), "a new segment's first draft hears the end of the one just cut"
    p.started(0.2, Segment("s", 5, 1.0, 2.1, 2.0, 2.1))
    assert not p.due(0.4, open_seq=5)
