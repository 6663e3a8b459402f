"""Interim text: provisional words of the segment still being heard, as ``PartialEvent``s.

While a segment is open, its audio so far is decoded every ``PARTIAL_INTERVAL_S`` (a draft: one
greedy pass) and published as a partial of the seq it will be committed under. The segment's own
``segment`` event, when it commits, replaces its partials for good.

Words a user already saw should change as little as possible. ``Drafts`` keeps the last draft of
the open seq and says how many leading words the new one agrees on (LocalAgreement-2, as
whisper_streaming commits the prefix two passes share): those are ``stable``. A draft that says
nothing new is not published, and one for a seq already committed is dropped.

Pure logic apart from the clock it is given; the pipeline owns the scheduling (see pipeline.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
class Drafts:
    """The drafts of one session's open segment.

    Attributes:
        session_id: carried by every partial.
        seq: the seq of the last draft (-1: none yet).
        revision: how many partials of ``seq`` were published.
        keys: the last published draft's words, as compared (``word_key``).
    """

    session_id: str = ""
    seq: int = -1
    revision: int = 0
    keys: tuple[str, ...] = ()

    def update(self, segment: Segment, words: Sequence[Word], next_seq: int, now: float) -> PartialEvent | None:
        """The partial to publish for a draft of ``segment`` (words in media time), or None: the seq
        is committed already (``next_seq`` is the resequencer's), or the draft says nothing new."""
        if segment.seq < next_seq:
            return None
        owned = tuple(w for w in words if w.centre >= segment.keep_start)
        if segment.seq != self.seq:
            self.seq, self.revision, self.keys = segment.seq, 0, ()
        keys = tuple(word_key(w) for w in owned)
        if not owned or keys == self.keys:
            return None
        stable = agreed_prefix(keys, self.keys)
        self.keys = keys
        self.revision += 1
        return PartialEvent(
            self.session_id,
            segment.seq,
            owned[0].start,
            owned[-1].end,
            join_words(owned),
            owned,
            now,
            self.revision,
            stable,
        )


@dataclass
class DraftPacer:
    """When to draft the open segment: at most every ``interval_s``, one draft at a time (the caller
    checks that), and only when its audio grew by ``min_growth_s`` since the last draft of the same
    seq. Whoever runs drafts (the CLI's pipeline, a service's capture instance) asks ``due`` and
    ``worth``, then says ``started``.

    Attributes:
        started_at: monotonic time the last draft started.
        drafted: ``(seq, audio end)`` of the last draft started.
    """

    interval_s: float = PARTIAL_INTERVAL_S
    min_growth_s: float = MIN_DRAFT_GROWTH_S
    started_at: float = -math.inf
    drafted: tuple[int, float] = (-1, 0.0)

    def due(self, now: float) -> bool:
        return now - self.started_at >= self.interval_s

    def worth(self, segment: Segment) -> bool:
        seq, end = self.drafted
        return segment.seq != seq or segment.end - end >= self.min_growth_s

    def started(self, now: float, segment: Segment) -> None:
        self.started_at = now
        self.drafted = (segment.seq, segment.end)


__all__ = ["DraftPacer", "Drafts", "agreed_prefix", "word_key"]
