"""Checks of a swapped session against the programme it captured, for tests and benchmarks.

Nothing in the product imports this. Two independent views of "nothing lost, nothing doubled":

- **audio**: every committed segment's audio is found in the original programme by normalised
  cross-correlation; its programme position minus its session time is the session clock's offset.
  Without loss or duplication that offset is the same for every segment of every epoch; across a
  swap it changes by exactly the swap's alignment error (positive: audio skipped, negative: audio
  repeated). ``clock_offsets``, ``epoch_steps``.
- **words**: the transcript around each cut compared with a run without swaps, both aligned to the
  programme's words: a word the run without swaps got and the swapped run did not is *lost*, an
  extra copy of a word around the cut is *doubled*. ``swap_word_errors``.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from couchpotato.records import Segment, Word
from couchpotato.testing.wer import normalise

from .align import SAMPLE_RATE_HZ, ncc_curve

SR = SAMPLE_RATE_HZ


# A page that plays like a live stream: every viewer hears the programme at the position the wall
# clock says (t0: when it started), as two players of one live channel would. Web Audio, so the
# position is exact and no HTTP range request is needed.
LIVE_PAGE = """<!doctype html><html><body><h1>live</h1><script>
const q = new URLSearchParams(location.search);
const t0 = Number(q.get('t0'));
const vod = q.get('vod');  // on demand: every viewer starts the programme when it opens the page
window.addEventListener('load', async () => {
  const ctx = new AudioContext();
  const data = await (await fetch(q.get('src'))).arrayBuffer();
  const buffer = await ctx.decodeAudioData(data);
  const node = ctx.createBufferSource();
  node.buffer = buffer;
  node.connect(ctx.destination);
  const offset = vod ? 0 : Date.now() / 1000 - t0;
  if (offset >= 0) node.start(0, offset); else node.start(ctx.currentTime - offset);
  document.title = 'playing';
});
</script></body></html>"""


@dataclass(frozen=True)
class SegmentPlace:
    """Where a segment's audio was found in the programme."""

    seq: int
    epoch: int
    session_s: float  # the segment's start on the session's clock
    offset_s: float  # programme time minus session time
    ncc: float


def clock_offsets(
    programme: np.ndarray, segments: Sequence[tuple[Segment, np.ndarray]], *, min_ncc: float = 0.8
) -> list[SegmentPlace]:
    """Each segment's place in ``programme`` (16 kHz); segments whose audio is not found (NCC below
    ``min_ncc``: silence, a glitch) are left out."""
    out: list[SegmentPlace] = []
    for seg, samples in segments:
        if len(samples) < SR // 2 or len(samples) >= len(programme):
            continue
        curve = ncc_curve(programme, samples)
        k = int(np.argmax(curve))
        peak = float(curve[k])
        if peak < min_ncc:
            continue
        out.append(SegmentPlace(seg.seq, seg.epoch, seg.start, k / SR - seg.start, peak))
    return out


def epoch_steps(places: Sequence[SegmentPlace]) -> tuple[dict[int, float], list[float], float]:
    """Per epoch the median clock offset, the steps between consecutive epochs (seconds; positive:
    audio skipped at that swap, negative: repeated), and the largest spread within an epoch."""
    by_epoch: dict[int, list[float]] = {}
    for p in places:
        by_epoch.setdefault(p.epoch, []).append(p.offset_s)
    medians = {e: float(np.median(v)) for e, v in sorted(by_epoch.items())}
    spread = max((max(v) - min(v) for v in by_epoch.values()), default=0.0)
    epochs = sorted(medians)
    steps = [medians[b] - medians[a] for a, b in itertools.pairwise(epochs)]
    return medians, steps, spread


@dataclass(frozen=True)
class CutWords:
    """Word errors around one cut: programme words the run without swaps got and this run did not
    (``lost``), extra copies of words (``doubled``), and the words looked at."""

    cut_s: float
    lost: list[str]
    doubled: list[str]
    window: list[str]


def _align(reference: list[str], hyp: list[str]) -> dict[int, int]:
    """hyp index → reference index, for words in matching blocks."""
    sm = difflib.SequenceMatcher(a=reference, b=hyp, autojunk=False)
    out: dict[int, int] = {}
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            out[block.b + k] = block.a + k
    return out


def _words(words: Sequence[Word]) -> list[tuple[str, float]]:
    out = []
    for w in words:
        for token in normalise(w.word).split():
            out.append((token, w.centre))
    return out


def swap_word_errors(
    programme_text: str,
    baseline: Sequence[Word],
    swapped: Sequence[Word],
    cuts_s: Sequence[float],
    *,
    window_s: float = 3.0,
) -> list[CutWords]:
    """Word errors of ``swapped`` (a run with swaps at ``cuts_s``, its session clock) against
    ``baseline`` (the same programme without swaps), around each cut; see the module docstring."""
    ref = normalise(programme_text).split()
    base = _words(baseline)
    swap = _words(swapped)
    base_map = _align(ref, [w for w, _ in base])
    swap_map = _align(ref, [w for w, _ in swap])
    base_hits = set(base_map.values())
    swap_hits = set(swap_map.values())
    out: list[CutWords] = []
    for cut in cuts_s:
        near = [i for i, (_, t) in enumerate(swap) if cut - window_s <= t <= cut + window_s]
        mapped = [swap_map[i] for i in near if i in swap_map]
        if not mapped:
            out.append(CutWords(cut, [], [], []))
            continue
        lo, hi = min(mapped) - 1, max(mapped) + 1
        window = list(range(max(0, lo), min(len(ref), hi + 1)))
        lost = [ref[p] for p in window if p in base_hits and p not in swap_hits]
        present = {ref[p] for p in window if p in swap_hits}
        doubled = [swap[i][0] for i in near if i not in swap_map and swap[i][0] in present]
        # a repeated run of words (the same two words twice in a row) is doubled audio too
        tokens = [swap[i][0] for i in near]
        for k in range(len(tokens) - 3):
            if tokens[k : k + 2] == tokens[k + 2 : k + 4] and " ".join(tokens[k : k + 2]) not in " ".join(ref):
                doubled += tokens[k : k + 2]
        out.append(CutWords(cut, lost, doubled, [ref[p] for p in window]))
    return out


__all__ = ["LIVE_PAGE", "CutWords", "SegmentPlace", "clock_offsets", "epoch_steps", "swap_word_errors"]
