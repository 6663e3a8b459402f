"""Interim text: provisional words of the segment still being heard, as ``PartialEvent``s.

While a segment is open, its audio so far is decoded every ``PARTIAL_INTERVAL_S`` (a draft: one
greedy pass, with the segment's lead-in) and published as a partial of the seq it will be
committed under. The lead-in is the audio of the segment cut just before, so a draft also
republishes that segment's words while its final decode runs: a word said just before a cut
appears within a draft's time, not its segment's. A segment's own ``segment`` event, when it
commits, replaces its partials for good.

Words a user already saw should change as little as possible. ``Drafts`` keeps the last draft of
each seq it publishes and says how many leading words the new one agrees on (LocalAgreement-2, as
whisper_streaming commits the prefix two passes share): those are ``stable``. A draft that says
nothing new is not published, and one for a seq already committed is dropped.

Pure logic apart from the clock it is given; the pipeline owns the scheduling (see pipeline.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .constants import MIN_DRAFT_GROWTH_S, PARTIAL_INTERVAL_S
from .records import PartialEvent, Segment, Word, join_words


def word_key(w: Word) -> str:
    """A word as two decodes of the same audio are compared: lower case, no punctuation."""
    return w.key


def agreed_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading words two drafts share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Shown:
    """What the partials of one seq showed so far: how many were published, and the last one's
    words as compared (``word_key``)."""

    revision: int = 0
    keys: tuple[str, ...] = ()


@dataclass
class Drafts:
    """The drafts of one session's open segment, and of the segment cut just before it.

    A draft decodes the open segment with its lead-in, and the lead-in is the audio the previous
    segment owns. While that segment is still being decoded, its words in the lead-in are news too:
    without them, a word spoken in the last second before a cut would first appear only when its
    segment commits. So a draft publishes up to two partials: the previous seq's (if it is not
    committed) and the open seq's.

    Attributes:
        session_id: carried by every partial.
        seq: the open seq last drafted (-1: none yet), and ``keep_start`` the start of its span.
        previous: ``(seq, keep_start)`` of the segment cut just before ``seq``, when it was
            drafted while open (its span then ends at ``keep_start``); None otherwise.
        shown: per seq, what its partials showed (the open seq and the previous one only).
    """

    session_id: str = ""
    seq: int = -1
    keep_start: float = 0.0
    previous: tuple[int, float] | None = None
    shown: dict[int, Shown] = field(default_factory=dict)

    def update(self, segment: Segment, words: Sequence[Word], next_seq: int, now: float) -> list[PartialEvent]:
        """The partials to publish for a draft of the open ``segment`` (words in media time): none
        for a seq committed already (``next_seq`` is the resequencer's, 0 when unknown) or for one
        the draft says nothing new of."""
        if segment.seq != self.seq:
            cut_before = segment.seq == self.seq + 1 and self.keep_start < segment.keep_start
            self.previous = (self.seq, self.keep_start) if cut_before else None
            self.seq, self.keep_start = segment.seq, segment.keep_start
            self.shown = {s: v for s, v in self.shown.items() if s in (segment.seq, segment.seq - 1)}
        events: list[PartialEvent] = []
        if self.previous is not None and self.previous[0] >= next_seq:
            prev_seq, prev_start = self.previous
            ev = self._partial(prev_seq, [w for w in words if prev_start <= w.centre < segment.keep_start], now)
            if ev is not None:
                events.append(ev)
        if segment.seq >= next_seq:
            ev = self._partial(segment.seq, [w for w in words if w.centre >= segment.keep_start], now)
            if ev is not None:
                events.append(ev)
        return events

    def _partial(self, seq: int, owned: list[Word], now: float) -> PartialEvent | None:
        shown = self.shown.setdefault(seq, Shown())
        keys = tuple(word_key(w) for w in owned)
        if not owned or keys == shown.keys:
            return None
        stable = agreed_prefix(keys, shown.keys)
        shown.keys = keys
        shown.revision += 1
        return PartialEvent(
            self.session_id,
            seq,
            owned[0].start,
            owned[-1].end,
            join_words(owned),
            tuple(owned),
            now,
            shown.revision,
            stable,
        )


@dataclass
class DraftPacer:
    """When to draft the open segment: every ``interval_s`` and on each new seq, one draft at a time
    (the caller checks that), and only when its audio grew by ``min_growth_s`` since the last draft
    of the same seq. Whoever runs drafts (the CLI's pipeline, a service's capture instance) asks ``due`` and
    ``worth``, then says ``started``.

    Attributes:
        started_at: monotonic time the last draft started.
        drafted: ``(seq, audio end)`` of the last draft started.
    """

    interval_s: float = PARTIAL_INTERVAL_S
    min_growth_s: float = MIN_DRAFT_GROWTH_S
    started_at: float = -math.inf
    drafted: tuple[int, float] = (-1, 0.0)

    def due(self, now: float, open_seq: int | None = None) -> bool:
        """Time for a draft: ``interval_s`` after the last one, or at once when a cut opened a new
        segment (``open_seq``, the segmenter's next seq) that was not drafted yet; its first draft
        hears the end of the segment just cut, while that one's final decode runs."""
        return now - self.started_at >= self.interval_s or (open_seq is not None and open_seq > self.drafted[0])

    def worth(self, segment: Segment) -> bool:
        seq, end = self.drafted
        return segment.seq != seq or segment.end - end >= self.min_growth_s

    def started(self, now: float, segment: Segment) -> None:
        self.started_at = now
        self.drafted = (segment.seq, segment.end)


__all__ = ["DraftPacer", "Drafts", "Shown", "agreed_prefix", "word_key"]
