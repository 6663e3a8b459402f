"""Transcript formats: text, JSON lines, SubRip and WebVTT, written event by event.

A writer turns each transcript event into the text to append, so the same code serves a live
stdout, a file sink and an export of a finished session (``render``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from .records import Event, GapEvent, LiveEvent, PartialEvent, TranscriptEvent, Word, dumps

Format = Literal["text", "jsonl", "srt", "vtt"]
FORMATS: tuple[Format, ...] = ("text", "jsonl", "srt", "vtt")
CUE_MAX_CHARS = 84  # two lines of 42, the usual subtitle limit
CUE_LINE_CHARS = 42
CUE_MAX_S = 7.0


def clock(seconds: float, sep: str = ".", hours: bool = True) -> str:
    ms = max(0, round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}" if hours else f"{m:02d}:{s:02d}{sep}{ms:03d}"


def cues(event: TranscriptEvent) -> list[tuple[float, float, str]]:
    """Split a segment into subtitle cues of at most two lines and CUE_MAX_S seconds."""
    if not event.words:
        return [(event.start, event.end, event.text)] if event.text else []
    out: list[tuple[float, float, str]] = []
    group: list[Word] = []
    for w in event.words:
        text = "".join(x.word for x in [*group, w]).strip()
        if group and (not _fits(text) or w.end - group[0].start > CUE_MAX_S):
            out.append((group[0].start, group[-1].end, _wrap("".join(x.word for x in group).strip())))
            group = []
        group.append(w)
    if group:
        out.append((group[0].start, group[-1].end, _wrap("".join(x.word for x in group).strip())))
    return out


def _fits(text: str) -> bool:
    return len(text) <= CUE_MAX_CHARS and all(len(line) <= CUE_LINE_CHARS for line in _wrap(text).split("\n"))


def _wrap(text: str) -> str:
    if len(text) <= CUE_LINE_CHARS:
        return text
    words = text.split()
    best, best_cost = 1, None
    for k in range(1, len(words)):
        a, b = " ".join(words[:k]), " ".join(words[k:])
        cost = max(len(a), len(b))
        if best_cost is None or cost < best_cost:
            best, best_cost = k, cost
    return " ".join(words[:best]) + "\n" + " ".join(words[best:])


class Writer:
    """Formats events one at a time.

    Attributes:
        cue: subtitle cues written so far; a writer resuming a transcript starts from its count.
    """

    def __init__(self, fmt: Format, *, cue: int = 0) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.cue = cue

    def header(self) -> str:
        return "WEBVTT\n\n" if self.fmt == "vtt" else ""

    def write(self, event: LiveEvent) -> str:
        """The text ``event`` adds to the output; a partial only in jsonl (the other formats hold
        final text; the CLI shows partials on a terminal itself)."""
        if self.fmt == "jsonl":
            return dumps(event) + "\n"
        if isinstance(event, PartialEvent):
            return ""
        if isinstance(event, TranscriptEvent):
            if self.fmt == "text":
                return event.text + "\n" if event.text else ""
            return "".join(self._cue_text(a, b, t) for a, b, t in cues(event))
        if isinstance(event, GapEvent):
            note = f"[gap: {event.reason}]"
            if self.fmt == "text":
                return f"{note} {clock(event.start, hours=True)}–{clock(event.end, hours=True)}\n"
            return self._cue_text(event.start, max(event.end, event.start + 0.5), note)
        return ""

    def _cue_text(self, start: float, end: float, text: str) -> str:
        self.cue += 1
        if self.fmt == "srt":
            return f"{self.cue}\n{clock(start, ',')} --> {clock(end, ',')}\n{text}\n\n"
        return f"{clock(start)} --> {clock(end)}\n{text}\n\n"


def render(events: Iterable[Event], fmt: Format) -> str:
    """A whole transcript in one format."""
    writer = Writer(fmt)
    return writer.header() + "".join(writer.write(e) for e in events)


__all__ = ["FORMATS", "Format", "Writer", "clock", "cues", "render"]
