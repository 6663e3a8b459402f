"""The resequencer: results arrive in any order, the transcript leaves in seq order, once each.

Transcription finishes out of order (several workers, retries, other machines). The resequencer
holds a result until every earlier seq has been committed, then commits it: it keeps the words the
segment owns (merging the overlap with its neighbour), drops a word repeated on both sides of a cut,
applies corrections, and emits a ``TranscriptEvent``. A segment that failed for good is committed as
a ``GapEvent``; a seq that never arrives while later ones wait longer than ``gap_timeout_s`` is
committed as a gap too, so the transcript never stalls forever and never skips silently. A result
for a seq already committed (a duplicate delivery, a late retry) is ignored.

All of its state is ``ResequencerState``, a small JSON-serialisable object, so that the distributed
scheduler can keep it in the broker and any process can continue where another stopped.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .constants import BOUNDARY_DUPLICATE_S, BOUNDARY_SIMILARITY, GAP_TIMEOUT_S
from .corrections import Corrections
from .records import (
    CommitEvent,
    GapEvent,
    SegmentFailure,
    SegmentResult,
    TranscriptEvent,
    Word,
    join_words,
)

Outcome = SegmentResult | SegmentFailure
_NORMALISE = re.compile(r"[^\w']+")


@dataclass
class ResequencerState:
    """Everything the resequencer knows; ``to_dict``/``from_dict`` round-trip it through JSON.

    Attributes:
        next_seq: the first seq not yet committed.
        held: outcomes that arrived before ``next_seq``'s, by seq.
        blocked_since: wall time since which ``next_seq`` has held later outcomes back.
        last_word: the last committed word, for the duplicate check at the next cut.
        last_end: media time where the committed transcript ends.
    """

    next_seq: int = 0
    held: dict[int, Outcome] = field(default_factory=dict)
    blocked_since: float | None = None
    last_word: Word | None = None
    last_end: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_seq": self.next_seq,
            "held": {
                str(k): {"kind": "result" if isinstance(v, SegmentResult) else "failure", **v.to_dict()}
                for k, v in self.held.items()
            },
            "blocked_since": self.blocked_since,
            "last_word": self.last_word.to_dict() if self.last_word else None,
            "last_end": self.last_end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResequencerState:
        held: dict[int, Outcome] = {}
        for k, v in d.get("held", {}).items():
            held[int(k)] = SegmentResult.from_dict(v) if v["kind"] == "result" else SegmentFailure.from_dict(v)
        last = d.get("last_word")
        return cls(
            next_seq=int(d["next_seq"]),
            held=held,
            blocked_since=d.get("blocked_since"),
            last_word=Word.from_dict(last) if last else None,
            last_end=float(d.get("last_end", 0.0)),
        )


class Resequencer:
    """Commits outcomes strictly in seq order, exactly once each."""

    def __init__(
        self,
        session_id: str = "",
        *,
        corrections: Corrections | None = None,
        gap_timeout_s: float = GAP_TIMEOUT_S,
        state: ResequencerState | None = None,
    ) -> None:
        self.session_id = session_id
        self.corrections = corrections or Corrections()
        self.gap_timeout_s = gap_timeout_s
        self.state = state or ResequencerState()

    @property
    def next_seq(self) -> int:
        return self.state.next_seq

    def offer(self, outcome: Outcome, now: float) -> list[CommitEvent]:
        """Take a result or failure; return what can now be committed, in order."""
        st = self.state
        if outcome.seq < st.next_seq or outcome.seq in st.held:
            return []  # committed already, or a duplicate of one held
        st.held[outcome.seq] = outcome
        events = self._drain(now)
        if st.held and st.blocked_since is None:
            st.blocked_since = now
        return events

    def expire(self, now: float) -> list[CommitEvent]:
        """Gap the missing seq if later outcomes have waited on it longer than the timeout."""
        st = self.state
        events: list[CommitEvent] = []
        while st.held and st.blocked_since is not None and now - st.blocked_since >= self.gap_timeout_s:
            events.append(self._gap_missing("timeout", now))
            events += self._drain(now)
            st.blocked_since = now if st.held else None
        return events

    def finish(self, total: int, now: float) -> list[CommitEvent]:
        """The source ended after ``total`` segments: commit what is held, gap what never came."""
        st = self.state
        events = self._drain(now)
        while st.next_seq < total:
            events.append(self._gap_missing("lost", now))
            events += self._drain(now)
        st.blocked_since = None
        return events

    # --- internals ----------------------------------------------------------------------------

    def _drain(self, now: float) -> list[CommitEvent]:
        st = self.state
        events: list[CommitEvent] = []
        while st.next_seq in st.held:
            outcome = st.held.pop(st.next_seq)
            events.append(self._commit(outcome, now))
            st.next_seq += 1
            st.blocked_since = now if st.held else None
        return events

    def _gap_missing(self, reason: str, now: float) -> GapEvent:
        """Commit ``next_seq``, whose outcome never arrived, as a gap."""
        st = self.state
        after = st.held.get(st.next_seq + 1)
        end = max(st.last_end, after.segment.keep_start) if after else st.last_end
        event = GapEvent(self.session_id, st.next_seq, st.last_end, end, reason, now)
        st.next_seq += 1
        st.last_word = None
        return event

    def _commit(self, outcome: Outcome, now: float) -> CommitEvent:
        st = self.state
        seg = outcome.segment
        if isinstance(outcome, SegmentFailure):
            st.last_end = max(st.last_end, seg.keep_end)
            st.last_word = None
            return GapEvent(seg.session_id, seg.seq, seg.keep_start, seg.keep_end, outcome.reason, now)
        words = [w for w in outcome.words if seg.keep_start <= w.centre < seg.keep_end]
        if words and seg.overlap > 0 and st.last_word is not None and _same_word(st.last_word, words[0]):
            words = words[1:]
        if self.corrections:
            words = self.corrections.apply(words)
        st.last_word = words[-1] if words else st.last_word
        st.last_end = max(st.last_end, seg.keep_end)
        start = words[0].start if words else seg.keep_start
        end = words[-1].end if words else seg.keep_end
        return TranscriptEvent(seg.session_id, seg.seq, start, end, join_words(words), tuple(words), now)


def _same_word(a: Word, b: Word) -> bool:
    """The same word heard on both sides of a cut: close in time, and spelt alike (the two decodes
    may differ slightly, "Capitol"/"capital")."""
    x, y = _NORMALISE.sub("", a.word.lower()), _NORMALISE.sub("", b.word.lower())
    if not x or not y or abs(a.start - b.start) >= BOUNDARY_DUPLICATE_S:
        return False
    return x == y or difflib.SequenceMatcher(None, x, y).ratio() >= BOUNDARY_SIMILARITY


__all__ = ["Resequencer", "ResequencerState"]
