"""The resequencer: results arrive in any order, the transcript leaves in seq order, once each.

Transcription finishes out of order (several workers, retries, other machines). The resequencer
holds a result until every earlier seq has been committed, then commits it: it keeps the words the
segment owns, merges them with the committed transcript at the cut (see ``merge_at_cut``), applies
corrections, and emits a ``TranscriptEvent``. A segment that failed for good is committed as
a ``GapEvent``; a seq that never arrives while later ones wait longer than ``gap_timeout_s`` is
committed as a gap too, so the transcript never stalls forever and never skips silently. A result
for a seq already committed (a duplicate delivery, a late retry) is ignored.

All of its state is ``ResequencerState``, a small JSON-serialisable object, so that the distributed
scheduler can keep it in the broker and any process can continue where another stopped.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from .constants import (
    BOUNDARY_DUPLICATE_S,
    BOUNDARY_SIMILARITY,
    GAP_TIMEOUT_S,
    LEAD_REPEAT_S,
    MIN_PIECE_LETTERS,
    PULLED_WORD_S,
    SKIPPED_SLACK_S,
    TAIL_WORDS,
)
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


@dataclass
class ResequencerState:
    """Everything the resequencer knows; ``to_dict``/``from_dict`` round-trip it through JSON.

    Attributes:
        next_seq: the first seq not yet committed.
        held: outcomes that arrived before ``next_seq``'s, by seq.
        blocked_since: wall time since which ``next_seq`` has held later outcomes back.
        tail: the last committed words as decoded (before corrections), to merge the next segment at
            its cut; emptied by a gap.
        overflow: the words the last committed segment heard after its owned span (its right
            context, where a cut fell inside speech), in case the next segment's decode skips them.
        last_end: media time where the committed transcript ends.
    """

    next_seq: int = 0
    held: dict[int, Outcome] = field(default_factory=dict)
    blocked_since: float | None = None
    tail: tuple[Word, ...] = ()
    overflow: tuple[Word, ...] = ()
    last_end: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_seq": self.next_seq,
            "held": {
                str(k): {"kind": "result" if isinstance(v, SegmentResult) else "failure", **v.to_dict()}
                for k, v in self.held.items()
            },
            "blocked_since": self.blocked_since,
            "tail": [w.to_dict() for w in self.tail],
            "overflow": [w.to_dict() for w in self.overflow],
            "last_end": self.last_end,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResequencerState:
        held: dict[int, Outcome] = {}
        for k, v in d.get("held", {}).items():
            held[int(k)] = SegmentResult.from_dict(v) if v["kind"] == "result" else SegmentFailure.from_dict(v)
        tail = [Word.from_dict(w) for w in d.get("tail", ())]
        if not tail and d.get("last_word"):  # state written before the tail replaced the last word
            tail = [Word.from_dict(d["last_word"])]
        return cls(
            next_seq=int(d["next_seq"]),
            held=held,
            blocked_since=d.get("blocked_since"),
            tail=tuple(tail),
            overflow=tuple(Word.from_dict(w) for w in d.get("overflow", ())),
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
        st.tail = st.overflow = ()
        return event

    def _commit(self, outcome: Outcome, now: float) -> CommitEvent:
        st = self.state
        seg = outcome.segment
        if isinstance(outcome, SegmentFailure):
            st.last_end = max(st.last_end, seg.keep_end)
            st.tail = st.overflow = ()
            return GapEvent(seg.session_id, seg.seq, seg.keep_start, seg.keep_end, outcome.reason, now)
        words = merge_at_cut(st.tail, outcome.words, seg.keep_start, seg.keep_end, st.overflow)
        if words:
            st.tail = (*st.tail, *words)[-TAIL_WORDS:]
        st.overflow = tuple(w for w in outcome.words if w.centre >= seg.keep_end)[:TAIL_WORDS]
        if self.corrections:
            words = self.corrections.apply(words)
        st.last_end = max(st.last_end, seg.keep_end)
        start = words[0].start if words else seg.keep_start
        end = words[-1].end if words else seg.keep_end
        return TranscriptEvent(seg.session_id, seg.seq, start, end, join_words(words), tuple(words), now)


def merge_at_cut(
    tail: tuple[Word, ...],
    words: tuple[Word, ...],
    keep_start: float,
    keep_end: float,
    overflow: tuple[Word, ...] = (),
) -> list[Word]:
    """The words of a segment that continue the committed transcript ending in ``tail``.

    A segment is decoded with some audio before the span it owns (lead-in context, or the overlap of
    a cut inside speech), so it hears again the last words already committed. By timestamps alone,
    a word whose timing the two decodes disagree on around the cut is lost or doubled. So the words
    are first aligned by text: the longest run of them that repeats the end of ``tail`` (spelt
    alike, one of its words starting or ending within ``BOUNDARY_DUPLICATE_S`` of the committed one
    it repeats) marks where the new words
    begin, whichever side of ``keep_start`` that falls. Without such a run, the segment keeps the
    words centred in its own span, and a first word Whisper stretched back over the lead-in (see
    ``_pulled_to_start``) unless it repeats a committed word. Other lead-in words are dropped: a
    decode that starts inside a word mishears its lead-in ("on weekends" as "We can't"), and keeping
    what does not repeat the committed words cost 1.2 points of WER on the tuning split. Words
    centred at or after ``keep_end`` belong to the next segment.

    Whisper sometimes skips the first words of audio that starts inside a sentence. ``overflow``
    (what the previous segment heard past its cut) fills that in: its words that end before this
    segment's first kept word, and that this segment's decode does not have near them, come first.
    """
    first = next((i for i, w in enumerate(words) if w.centre >= keep_start), len(words))
    best: tuple[int, int] | None = None  # (run length, index of the first new word)
    if tail:
        for p in range(len(words)):
            k = 0
            while k < len(tail) and p - k >= 0 and _alike(tail[-1 - k], words[p - k]):
                k += 1
            # the same audio heard twice: some word of the run timed alike by both decodes (Whisper
            # often stretches the last word before a cut, or squeezes it to nothing)
            if not k or not any(_close(words[p - j], tail[-1 - j]) for j in range(k)):
                continue
            if best is None or k > best[0] or (k == best[0] and abs(p + 1 - first) < abs(best[1] - first)):
                best = (k, p + 1)
    # Whisper pulls the first word of a decode to the start of its audio when it skips the lead-in
    # words before it ("equal. Now" heard as "Now[9.1-10.2]"): its centre then lies in the lead-in
    # although the word was spoken in the owned span. Kept, unless it repeats a committed word.
    pulled = best is None and first > 0 and tail and _pulled_to_start(words[0], keep_start)
    if pulled and not any(_repeats(words[0], t) for t in tail):
        first = 0
    start = best[1] if best is not None else first
    kept = [w for w in words[start:] if w.centre < keep_end]
    if overflow:
        after = tail[-1].end - SKIPPED_SLACK_S if tail else float("-inf")
        # before the first kept word (whose start Whisper often places early: compare centres)
        before = kept[0].centre if kept else keep_end
        skipped = [
            w
            for w in overflow
            if w.start >= after
            and w.centre < before
            and w.centre < keep_end
            and not any(_alike(w, x) and _close(w, x) for x in words)
        ]
        kept = skipped + kept
    return kept


def _close(a: Word, b: Word) -> bool:
    """Timed alike: two decodes agree on a word's start or on its end (Whisper stretches the end of
    a word before a pause, and sometimes the start of the first word of its audio)."""
    return abs(a.start - b.start) < BOUNDARY_DUPLICATE_S or abs(a.end - b.end) < BOUNDARY_DUPLICATE_S


def _pulled_to_start(w: Word, keep_start: float) -> bool:
    """A first word stretched back over the lead-in: long, and ending inside the owned span."""
    return w.end - w.start >= PULLED_WORD_S and w.end > keep_start


def _repeats(a: Word, b: Word) -> bool:
    """``a``, heard in a segment's lead-in, is ``b`` (committed) heard again: near it in time and
    spelt alike, or a piece of it (audio that starts inside "neighborhoods" is heard as "hoods")."""
    if abs(a.centre - b.centre) >= LEAD_REPEAT_S:
        return False
    if _alike(a, b):
        return True
    x, y = a.key, b.key
    return len(x) >= MIN_PIECE_LETTERS and len(y) > len(x) and (y.endswith(x) or y.startswith(x))


def _alike(a: Word, b: Word) -> bool:
    """Spelt alike (two decodes of the same audio may differ slightly: "Capitol"/"capital")."""
    x, y = a.key, b.key
    if not x or not y:
        return False
    return x == y or difflib.SequenceMatcher(None, x, y).ratio() >= BOUNDARY_SIMILARITY


__all__ = ["Resequencer", "ResequencerState", "merge_at_cut"]
