"""A word-loss audit: where a transcript lost a run of words, or heard a word twice, and which cut
between segments lies nearest.

WER mixes recognition errors (a word mis-heard) with pipeline errors (a word thrown away at a cut,
or committed by both segments). The audit counts the second kind: the hypothesis is aligned with
the reference (jiwer's alignment, after Whisper's English normaliser applied word by word so that
each token keeps its time), then

- a *lost run* is 3 or more consecutive reference words deleted (mis-hearing rarely deletes three
  words in a row; a dropped decode window or a word range skipped at a cut does);
- a *doubled word* is an inserted (or substituted) token that repeats the word just before or after
  it (or a piece of it, like "hoods" after "neighborhoods") within ``CUT_WINDOW_S`` of a cut between two segments.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .wer import normalise

CUT_WINDOW_S = 2.0
MIN_LOST_RUN = 3


@dataclass(frozen=True)
class Token:
    """One normalised word of a transcript, with the segment and media time it came from."""

    text: str
    start: float
    end: float
    seq: int


@dataclass(frozen=True)
class LostRun:
    words: tuple[str, ...]
    context: str  # the reference around the run, the run in [brackets]
    at_s: float  # media time between the hypothesis words either side of the run
    cut_s: float | None  # the nearest cut between two segments
    voice: str = ""

    def describe(self) -> str:
        cut = f"nearest cut {self.cut_s:.2f} s" if self.cut_s is not None else "no cut"
        who = f"{self.voice}: " if self.voice else ""
        return f"{who}{len(self.words)} words lost at {self.at_s:.2f} s ({cut}): {self.context}"


@dataclass(frozen=True)
class Doubled:
    word: str
    at_s: float
    cut_s: float
    context: str
    voice: str = ""

    def describe(self) -> str:
        who = f"{self.voice}: " if self.voice else ""
        return f"{who}{self.word!r} doubled at {self.at_s:.2f} s (cut {self.cut_s:.2f} s): {self.context}"


@dataclass
class Audit:
    lost: list[LostRun] = field(default_factory=list)
    doubled: list[Doubled] = field(default_factory=list)

    def extend(self, other: Audit) -> None:
        self.lost += other.lost
        self.doubled += other.doubled

    @property
    def lost_words(self) -> int:
        return sum(len(r.words) for r in self.lost)


def reference_tokens(text: str) -> list[str]:
    return [t for w in text.split() for t in normalise(w).split()]


def hypothesis_tokens(segments: Iterable[tuple[int, Sequence[tuple[float, float, str]]]]) -> list[Token]:
    """Tokens of ``(seq, [(start, end, word), …])`` segments, in order."""
    return [
        Token(t, start, end, seq)
        for seq, words in segments
        for start, end, word in words
        for t in normalise(word).split()
    ]


def event_tokens(events: Iterable[Any]) -> list[Token]:
    """Tokens of committed segments: ``TranscriptEvent``s, or their JSON (``{"type": "segment", …}``);
    anything else (session, gap, end, status events) is passed over."""
    segments: list[tuple[int, list[tuple[float, float, str]]]] = []
    for e in events:
        if isinstance(e, dict):
            if e.get("type") == "segment":
                segments.append(
                    (int(e["seq"]), [(float(w["start"]), float(w["end"]), str(w["word"])) for w in e["words"]])
                )
        elif getattr(e, "type", None) == "segment":
            segments.append((int(e.seq), [(w.start, w.end, w.word) for w in e.words]))
    return hypothesis_tokens(segments)


def assert_no_word_lost(reference: str, events: Iterable[Any]) -> None:
    """Fail (AssertionError) if a transcript lost a run of words or doubled one at a cut, naming each."""
    found = audit(reference, event_tokens(events))
    problems = [r.describe() for r in found.lost] + [d.describe() for d in found.doubled]
    assert not problems, "words lost or doubled at cuts: " + "; ".join(problems)


def cuts_of(tokens: Sequence[Token]) -> list[float]:
    """Media times between consecutive segments (midway between their words)."""
    return [(a.end + b.start) / 2 for a, b in itertools.pairwise(tokens) if a.seq != b.seq]


def audit(reference: str, tokens: Sequence[Token], *, voice: str = "", cuts: Sequence[float] | None = None) -> Audit:
    """Lost runs and doubled words of ``tokens`` against ``reference`` (see the module docstring)."""
    import jiwer

    ref = reference_tokens(reference)
    hyp = [t.text for t in tokens]
    cut_list = list(cuts_of(tokens) if cuts is None else cuts)
    out = Audit()
    if not ref or not hyp:
        return out
    result = jiwer.process_words(" ".join(ref), " ".join(hyp))
    for chunk in result.alignments[0]:
        if chunk.type == "delete" and chunk.ref_end_idx - chunk.ref_start_idx >= MIN_LOST_RUN:
            before = tokens[chunk.hyp_start_idx - 1].end if chunk.hyp_start_idx > 0 else 0.0
            after = tokens[chunk.hyp_start_idx].start if chunk.hyp_start_idx < len(tokens) else before
            at = (before + after) / 2
            lo, hi = chunk.ref_start_idx, chunk.ref_end_idx
            context = " ".join([*ref[max(0, lo - 4) : lo], "[", *ref[lo:hi], "]", *ref[hi : hi + 4]])
            out.lost.append(LostRun(tuple(ref[lo:hi]), context, at, _nearest(cut_list, at), voice))
        elif chunk.type in ("insert", "substitute"):
            for i in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                tok = tokens[i]
                cut = _nearest(cut_list, tok.start)
                if cut is None or abs(cut - tok.start) > CUT_WINDOW_S:
                    continue
                neighbours = [t.text for t in tokens[max(0, i - 1) : i]] + [t.text for t in tokens[i + 1 : i + 2]]
                if any(_repeats(tok.text, n) for n in neighbours):
                    context = " ".join(t.text for t in tokens[max(0, i - 4) : i + 5])
                    out.doubled.append(Doubled(tok.text, tok.start, cut, context, voice))
    return out


def _repeats(word: str, neighbour: str) -> bool:
    """The same word, or a piece of it at least 4 letters long ("hoods" of "neighborhoods")."""
    if word == neighbour:
        return True
    short, long_ = sorted((word, neighbour), key=len)
    return len(short) >= 4 and (long_.endswith(short) or long_.startswith(short))


def _nearest(cuts: Sequence[float], t: float) -> float | None:
    return min(cuts, key=lambda c: abs(c - t)) if cuts else None


__all__ = [
    "Audit",
    "Doubled",
    "LostRun",
    "Token",
    "assert_no_word_lost",
    "audit",
    "cuts_of",
    "event_tokens",
    "hypothesis_tokens",
    "reference_tokens",
]
