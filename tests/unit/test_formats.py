from __future__ import annotations

from couchpotato.formats import Writer, clock, cues, render
from couchpotato.records import EndEvent, GapEvent, SessionEvent, TranscriptEvent, Word


def event(seq: int, start: float, text: str) -> TranscriptEvent:
    ws = tuple(Word(start + i * 0.4, start + i * 0.4 + 0.3, " " + w, 0.9) for i, w in enumerate(text.split()))
    return TranscriptEvent("s", seq, ws[0].start, ws[-1].end, text, ws, 0.0)


def test_clock() -> None:
    assert clock(3723.4567) == "01:02:03.457"
    assert clock(1.5, ",") == "00:00:01,500"


def test_srt_numbering_and_times() -> None:
    out = render(
        [
            SessionEvent(0),
            event(0, 1.0, "hello there"),
            GapEvent("s", 1, 2.0, 3.0, "asr_failed"),
            event(2, 3.0, "goodbye"),
            EndEvent(),
        ],
        "srt",
    )
    blocks = out.strip().split("\n\n")
    assert blocks[0] == "1\n00:00:01,000 --> 00:00:01,700\nhello there"
    assert blocks[1].startswith("2\n00:00:02,000 --> 00:00:03,000\n[gap: asr_failed]")
    assert blocks[2].startswith("3\n00:00:03,000 --> ")


def test_vtt_header_and_dot_millis() -> None:
    out = render([event(0, 61.0, "hi")], "vtt")
    assert out.startswith("WEBVTT\n\n00:01:01.000 --> 00:01:01.300\nhi\n")


def test_long_segments_split_into_two_line_cues() -> None:
    text = " ".join(["word"] * 40)
    cs = cues(event(0, 0.0, text))
    assert len(cs) > 1
    for _a, _b, body in cs:
        assert body.count("\n") <= 1 and all(len(line) <= 42 for line in body.split("\n"))


def test_text_skips_empty_segments_and_marks_gaps() -> None:
    w = Writer("text")
    empty = TranscriptEvent("s", 0, 0, 1, "", (), 0.0)
    assert w.write(empty) == ""
    assert w.write(GapEvent("s", 1, 1.0, 2.0, "timeout")).startswith("[gap: timeout]")
