"""Where the old instance stops and the new one takes over, and what the old one still emits.

The cut-over point is a **low-energy point** on the session's clock, chosen by the old instance
once the new one is aligned and holds audio from ``from_sample`` on:

1. preferably a **segmenter cut**: a segment the old instance's segmenter just emitted whose audio
   does not cross its owned end (``end <= keep_end``, i.e. a cut in a pause, not a forced cut inside
   speech). The old instance's last segment ends there, the new instance's first begins there;
2. otherwise, after ``prefer_segmenter_cut_s`` without one (a silent source cuts no segments), a
   **quiet point**: the last ``quiet_ms`` of audio stayed within ``QUIET_ABOVE_FLOOR_DB`` of the
   recent noise floor (or under ``QUIET_MIN_DBFS``). The old segmenter is flushed there.

Either way the cut is at least ``guard`` samples after ``from_sample``, so the new instance holds
the audio from the cut on. The ``Gate`` then holds back what the old instance's segmenter produces
after the cut: dropped when the new instance takes over, released (in order, nothing lost) if the
swap fails and the old instance carries on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np

from . import constants as C
from .align import SAMPLE_RATE_HZ, dbfs


class _Seg(Protocol):
    @property
    def keep_start(self) -> float: ...
    @property
    def keep_end(self) -> float: ...
    @property
    def end(self) -> float: ...


class _HasSegment(Protocol):
    @property
    def segment(self) -> _Seg: ...


S = TypeVar("S", bound=_HasSegment)


def clean_cut(seg: _Seg) -> bool:
    """The segment's audio stops at its owned end: it was cut in a pause, not inside speech."""
    return seg.end <= seg.keep_end + 1e-9


def sample_of(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE_HZ)


@dataclass
class QuietTracker:
    """Levels of the recent audio in short windows, on the session's clock."""

    window_ms: float = C.QUIET_WINDOW_MS
    history_s: float = C.QUIET_HISTORY_S
    above_floor_db: float = C.QUIET_ABOVE_FLOOR_DB
    min_dbfs: float = C.QUIET_MIN_DBFS
    _levels: deque[tuple[int, float]] = field(default_factory=deque)  # (end sample, dBFS)
    _carry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    _carry_start: int = 0

    @property
    def window(self) -> int:
        return round(self.window_ms / 1000 * SAMPLE_RATE_HZ)

    @property
    def end_sample(self) -> int:
        return self._carry_start + len(self._carry)

    def push(self, start: int, samples: np.ndarray) -> None:
        if start != self.end_sample:  # a jump: start over
            self._carry = np.zeros(0, dtype=np.float32)
            self._carry_start = start
            self._levels.clear()
        data = np.concatenate([self._carry, samples.astype(np.float32, copy=False)])
        w = self.window
        n = len(data) // w
        for i in range(n):
            self._levels.append((self._carry_start + (i + 1) * w, dbfs(data[i * w : (i + 1) * w])))
        self._carry = data[n * w :]
        self._carry_start += n * w
        keep = round(self.history_s * 1000 / self.window_ms)
        while len(self._levels) > keep:
            self._levels.popleft()

    def threshold_dbfs(self) -> float:
        if not self._levels:
            return self.min_dbfs
        floor = float(np.percentile([lv for _, lv in self._levels], 10))
        return max(self.min_dbfs, floor + self.above_floor_db)

    def quiet(self, quiet_ms: float = C.QUIET_MS) -> bool:
        """The last ``quiet_ms`` of audio were all quiet."""
        need = max(1, round(quiet_ms / self.window_ms))
        if len(self._levels) < need:
            return False
        limit = self.threshold_dbfs()
        return all(level <= limit for _, level in list(self._levels)[-need:])


@dataclass(frozen=True, slots=True)
class CutChoice:
    """Where to cut: after ``emit_first`` of the segments just produced (segmenter cut), or after
    flushing the segmenter (quiet point). ``sample`` is the cut on the session's clock."""

    sample: int
    kind: Literal["segmenter", "quiet"]
    emit_first: int = 0


@dataclass
class CutoverPlanner:
    """Chooses the cut-over point once the new instance holds audio from ``from_sample`` on."""

    from_sample: int
    started_at: float
    guard: int = round(C.CUT_GUARD_S * SAMPLE_RATE_HZ)
    prefer_segmenter_cut_s: float = C.PREFER_SEGMENTER_CUT_S
    timeout_s: float = C.CUTOVER_TIMEOUT_S
    quiet_ms: float = C.QUIET_MS

    @property
    def earliest(self) -> int:
        return self.from_sample + self.guard

    def choose(
        self, produced: Sequence[_HasSegment], pushed_end: int, quiet: QuietTracker, now: float
    ) -> CutChoice | None:
        """After a push to the old segmenter that produced ``produced`` (audio pushed up to
        ``pushed_end``): where to cut, or None to keep going."""
        for i, seg in enumerate(produced):
            s = seg.segment
            end = sample_of(s.keep_end)
            if end >= self.earliest and clean_cut(s):
                return CutChoice(end, "segmenter", i + 1)
        waited = now - self.started_at
        if waited >= self.prefer_segmenter_cut_s and pushed_end >= self.earliest and quiet.quiet(self.quiet_ms):
            return CutChoice(pushed_end, "quiet", len(produced))
        return None

    def timed_out(self, now: float) -> bool:
        return now - self.started_at >= self.timeout_s


@dataclass
class Gate(Generic[S]):
    """Holds back the old instance's segments from the cut on, until the swap's outcome is known."""

    cut: int | None = None
    held: list[S] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.cut is not None

    def close(self, at: int) -> None:
        self.cut = at

    def offer(self, seg: S) -> bool:
        """True: emit it now; False: it was held."""
        if self.cut is None:
            return True
        self.held.append(seg)
        return False

    def release(self) -> list[S]:
        """The swap failed: open again and give back what was held, in order."""
        out, self.held, self.cut = self.held, [], None
        return out

    def drop(self) -> int:
        """The new instance took over: forget what was held. How many segments that was."""
        n = len(self.held)
        self.held.clear()
        return n


__all__ = ["CutChoice", "CutoverPlanner", "Gate", "QuietTracker", "clean_cut", "sample_of"]
