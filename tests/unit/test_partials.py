"""Interim text: which drafts become partials, and how many of their words are stable."""

from __future__ import annotations

from couchpotato.formats import Writer
from couchpotato.partials import DraftPacer, Drafts, agreed_prefix
from couchpotato.records import PartialEvent, Segment, Word, event_from_dict


def seg(seq: int, keep_start: float = 0.0) -> Segment:
    return Segment("s", seq, max(0.0, keep_start - 1), 9.0, keep_start, 9.0)


def words(*spelt: str, start: float = 0.0) -> list[Word]:
    return [Word(start + i * 0.3, start + i * 0.3 + 0.25, f" {w}", 0.9) for i, w in enumerate(spelt)]


def test_drafts_grow_a_revision_and_say_which_words_two_drafts_agree_on() -> None:
    d = Drafts("s")
    first = d.update(seg(0), words("The", "city"), 0, 1.0)
    assert first is not None and (first.revision, first.stable, first.text) == (1, 0, "The city")
    second = d.update(seg(0), words("the", "city,", "council", "met"), 0, 2.0)
    assert second is not None and (second.revision, second.stable) == (2, 2)  # case and commas aside
    assert d.update(seg(0), words("The", "city", "council", "met."), 0, 3.0) is None, "nothing new"
    changed = d.update(seg(0), words("The", "city", "counsel", "met", "on"), 0, 4.0)
    assert changed is not None and changed.stable == 2


def test_a_new_seq_starts_again_and_a_committed_seq_gets_no_partial() -> None:
    d = Drafts("s")
    assert d.update(seg(0), words("one"), 0, 1.0) is not None
    later = d.update(seg(1), words("two", "three"), 1, 2.0)
    assert later is not None and (later.seq, later.revision, later.stable) == (1, 1, 0)
    assert d.update(seg(1), words("two", "three", "four"), 2, 3.0) is None, "seq 1 was committed meanwhile"


def test_a_draft_keeps_only_the_words_its_segment_owns() -> None:
    d = Drafts("s")
    ev = d.update(seg(3, keep_start=1.0), words("equal.", "Now", "we", start=0.6), 3, 1.0)
    # "equal." (centre 0.725) lies in the lead-in, which the previous segment owns
    assert ev is not None and ev.text == "Now we"


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
