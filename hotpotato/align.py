"""Alignment of a new capture instance's audio to the session's clock.

Two instances of one source do not start at the same moment, so sample ``l`` of the new instance
is sample ``l + offset`` of the session. The offset is found, per source kind:

- **by media timestamps** where the source has them: a file is read from a known position (FFmpeg
  seeks it sample-accurately), an HLS or RTMP stream carries stream time (the PTS of the first
  sample FFmpeg decoded, ``ClockRef``). The offset is then exact by construction; it is *verified*
  by cross-correlating the overlapping audio within ±``verify_search_ms`` of it, and refused when
  the audio, loud enough to tell, disagrees by more than ``timestamp_tolerance_ms`` (a stream
  whose timestamps restarted, say) — unless the audio itself gives a confident offset;
- **by cross-correlation** of the overlapping audio where they do not (browser capture: two
  Chromiums playing one live page). The wall clock gives a prior (both instances receive the same
  moment of the programme at about the same time); FFT cross-correlation searches ±``search_s``
  around it. Several probe windows (the loudest parts of the new audio) are matched independently:
  a match is a peak of normalised cross-correlation (NCC, Pearson's r of the two windows) of at
  least ``min_ncc`` with no second peak within ``max_side_peak_ratio`` of it; at least two probes
  must agree within ``agree_ms``. The **confidence** reported is the lowest NCC of the agreeing
  probes (1.0: identical audio). Silence matches anything, so quiet probes are not used: a swap
  whose overlap is silent waits for sound, and is refused if none comes;
- **by the wall clock** only when nothing overlaps (the old instance is dead and the source has no
  timestamps): its error is that of the two instances' start times (reported, not hidden).

Pure numpy: no I/O. The FFT work of one alignment is a few tens of milliseconds; callers run it
in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import constants as C
from .errors import AlignmentError, SerializationError

SAMPLE_RATE_HZ = 16_000
Method = Literal["timestamps", "xcorr", "wallclock"]
METHODS: tuple[Method, ...] = ("timestamps", "xcorr", "wallclock")


@dataclass(frozen=True, slots=True)
class Audio:
    """Contiguous samples and the clock index of the first one."""

    start: int
    samples: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.samples)

    def span(self, start: int, end: int) -> np.ndarray:
        """Samples of [start, end) that this audio holds (clipped)."""
        a = max(start, self.start) - self.start
        b = min(end, self.end) - self.start
        return self.samples[a:b] if b > a else self.samples[:0]


@dataclass(frozen=True, slots=True)
class ClockRef:
    """A point of a stream's own timeline on the session's clock: session sample ``sample`` is
    stream time ``pts`` (seconds). Any instance that knows the stream time of its first sample can
    place itself on the session's clock with it."""

    sample: int
    pts: float

    def session_sample(self, pts: float) -> int:
        return self.sample + round((pts - self.pts) * SAMPLE_RATE_HZ)

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "pts": round(self.pts, 6)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ClockRef | None:
        if not d:
            return None
        try:
            return cls(int(d["sample"]), float(d["pts"]))
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode ClockRef: {e}") from e


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where the new instance's audio sits on the session's clock: session = local + ``offset``.

    Attributes:
        offset: samples to add to the new instance's clock.
        method: timestamps, xcorr or wallclock.
        confidence: 0–1; for xcorr and verified timestamps the lowest NCC of the agreeing probes;
            1.0 for timestamps that could not be checked (silent overlap); 0 for the wall clock.
        error_ms: estimated bound of the alignment error.
        ncc: the peak NCC measured (None: not measured).
        residual_ms: timestamps minus audio, where both were measured.
        probes: how many probe windows agreed / were tried.
        note: anything a reader should know (why timestamps were not used…).
    """

    offset: int
    method: Method
    confidence: float
    error_ms: float
    ncc: float | None = None
    residual_ms: float | None = None
    probes: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "method": self.method,
            "confidence": round(self.confidence, 4),
            "error_ms": round(self.error_ms, 3),
            "ncc": None if self.ncc is None else round(self.ncc, 4),
            "residual_ms": None if self.residual_ms is None else round(self.residual_ms, 3),
            "probes": self.probes,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alignment:
        try:
            method = str(d["method"])
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}")
            return cls(
                int(d["offset"]),
                method,
                float(d["confidence"]),
                float(d["error_ms"]),
                None if d.get("ncc") is None else float(d["ncc"]),
                None if d.get("residual_ms") is None else float(d["residual_ms"]),
                str(d.get("probes", "")),
                str(d.get("note", "")),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SerializationError(f"cannot decode Alignment: {e}") from e


@dataclass(frozen=True)
class AlignOptions:
    """How alignment is searched for and when it is trusted (see the module docstring).

    Attributes:
        search_s: cross-correlation searches the prior offset ± this.
        verify_search_ms: timestamps are checked within ± this.
        probe_s: length of each probe window.
        probes: probe windows tried.
        agree_ms: probes agree when their offsets differ by at most this.
        min_ncc: a peak below this is no match.
        max_side_peak_ratio: a second peak at least this high (relative) makes a match ambiguous.
        side_peak_ms: the second peak is looked for outside ± this of the first.
        min_probe_dbfs: quieter probe windows are not used.
        timestamp_tolerance_ms: timestamps and audio may disagree by this much.
        skip_start_s: the new instance's first audio is not used as a probe (a player starting up,
            a decoder without its previous frame: measured to differ from the old instance's).
        first_search_s: cross-correlation first searches ± this (it needs less reference audio,
            so it can succeed sooner), then ± ``search_s``.
    """

    search_s: float = C.XCORR_SEARCH_S
    verify_search_ms: float = C.VERIFY_SEARCH_MS
    probe_s: float = C.PROBE_S
    probes: int = C.PROBES
    agree_ms: float = C.AGREE_MS
    min_ncc: float = C.MIN_NCC
    max_side_peak_ratio: float = C.MAX_SIDE_PEAK_RATIO
    side_peak_ms: float = C.SIDE_PEAK_MS
    min_probe_dbfs: float = C.MIN_PROBE_DBFS
    timestamp_tolerance_ms: float = C.TIMESTAMP_TOLERANCE_MS
    skip_start_s: float = C.SKIP_START_S
    first_search_s: float = C.FIRST_SEARCH_S


@dataclass(frozen=True, slots=True)
class Match:
    """One probe window's best place in the reference."""

    probe_start: int  # on the new instance's clock
    offset: int  # session = local + offset
    ncc: float
    side_ratio: float  # second-best peak / best peak (outside ±side_peak_ms)
    frac: float  # sub-sample refinement of the peak, in samples (-0.5 … 0.5)

    def good(self, o: AlignOptions) -> bool:
        return self.ncc >= o.min_ncc and self.side_ratio <= o.max_side_peak_ratio


def dbfs(samples: np.ndarray) -> float:
    if not len(samples):
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return -120.0 if rms <= 0 else max(-120.0, 20 * np.log10(rms))


def ncc_curve(reference: np.ndarray, probe: np.ndarray, *, min_energy_ratio: float = 0.05) -> np.ndarray:
    """Normalised cross-correlation of ``probe`` at every lag of ``reference`` (len(ref) - len(probe) + 1
    values in [-1, 1]). Lags where the reference is much quieter than the probe score 0: silence
    would otherwise match anything after normalisation."""
    ref = np.asarray(reference, dtype=np.float64)
    p = np.asarray(probe, dtype=np.float64)
    n, m = len(ref), len(p)
    if m == 0 or n < m:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(n + m)))
    corr = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(p, size)), size)[: n - m + 1]
    sq = np.concatenate([[0.0], np.cumsum(ref * ref)])
    window = sq[m:] - sq[: n - m + 1]
    pe = float(np.dot(p, p))
    if pe <= 0:
        return np.zeros(n - m + 1)
    ok = window > min_energy_ratio * pe
    out = np.zeros(n - m + 1)
    out[ok] = corr[ok] / np.sqrt(window[ok] * pe)
    return np.clip(out, -1.0, 1.0)


def match_probe(reference: Audio, probe: Audio, prior_offset: int, search: int, o: AlignOptions) -> Match | None:
    """Best place of ``probe`` (new clock) in ``reference`` (session clock) within prior ± search."""
    lo = probe.start + prior_offset - search
    hi = probe.end + prior_offset + search
    ref = reference.span(lo, hi)
    if len(ref) < len(probe.samples):
        return None
    ref_start = max(lo, reference.start)
    curve = ncc_curve(ref, probe.samples)
    if not len(curve):
        return None
    k = int(np.argmax(curve))
    peak = float(curve[k])
    frac = 0.0
    if 0 < k < len(curve) - 1:
        a, b, c = float(curve[k - 1]), peak, float(curve[k + 1])
        denom = a - 2 * b + c
        if denom < 0:
            frac = max(-0.5, min(0.5, 0.5 * (a - c) / denom))
    side = round(o.side_peak_ms / 1000 * SAMPLE_RATE_HZ)
    outside = np.concatenate([curve[: max(0, k - side)], curve[k + side + 1 :]])
    second = float(outside.max()) if len(outside) else 0.0
    ratio = max(0.0, second) / peak if peak > 0 else 1.0
    return Match(probe.start, ref_start + k - probe.start, peak, ratio, frac)


def probe_windows(new: Audio, usable: tuple[int, int], o: AlignOptions) -> list[Audio]:
    """The loudest non-overlapping windows of ``new`` within ``usable`` (new clock), loud ones only,
    past the first ``skip_start_s``."""
    length = round(o.probe_s * SAMPLE_RATE_HZ)
    a = max(usable[0], new.start + round(o.skip_start_s * SAMPLE_RATE_HZ))
    b = min(usable[1], new.end)
    if b - a < length:
        return []
    step = length // 4
    starts = list(range(a, b - length + 1, step))
    levels = [(dbfs(new.span(s, s + length)), s) for s in starts]
    chosen: list[Audio] = []
    for level, s in sorted(levels, reverse=True):
        if level < o.min_probe_dbfs or len(chosen) >= o.probes:
            break
        if all(abs(s - c.start) >= length for c in chosen):
            chosen.append(Audio(s, new.span(s, s + length)))
    return sorted(chosen, key=lambda w: w.start)


def _agreeing(matches: Sequence[Match], o: AlignOptions) -> list[Match]:
    """The largest group of good matches whose offsets agree within ``agree_ms``."""
    good = [m for m in matches if m.good(o)]
    tol = o.agree_ms / 1000 * SAMPLE_RATE_HZ
    best: list[Match] = []
    for m in good:
        group = [x for x in good if abs(x.offset - m.offset) <= tol]
        if len(group) > len(best):
            best = group
    return best


def align_xcorr(reference: Audio, new: Audio, prior_offset: int, options: AlignOptions | None = None) -> Alignment:
    """Offset of ``new`` on the clock of ``reference`` by cross-correlation around ``prior_offset``
    (± ``first_search_s``, then ± ``search_s``); raises ``AlignmentError`` when it is not confident
    (too quiet, no match, ambiguous, probes disagreeing)."""
    o = options or AlignOptions()
    error: AlignmentError | None = None
    for search_s in sorted({min(o.first_search_s, o.search_s), o.search_s}):
        try:
            return _align_xcorr(reference, new, prior_offset, round(search_s * SAMPLE_RATE_HZ), o)
        except AlignmentError as e:
            error = e
    assert error is not None
    raise error


def _align_xcorr(reference: Audio, new: Audio, prior_offset: int, search: int, o: AlignOptions) -> Alignment:
    # Only where the reference can cover the probe at every lag searched.
    usable = (reference.start - prior_offset + search, reference.end - prior_offset - search)
    windows = probe_windows(new, usable, o)
    if len(windows) < 2:
        raise AlignmentError(
            f"not enough audible overlap to align by cross-correlation ({len(windows)} probe window(s) "
            f"of {o.probe_s:.0f} s louder than {o.min_probe_dbfs:.0f} dBFS)"
        )
    matches = [m for w in windows if (m := match_probe(reference, w, prior_offset, search, o)) is not None]
    agree = _agreeing(matches, o)
    if len(agree) < 2:
        best = max(matches, key=lambda m: m.ncc, default=None)
        detail = f"best NCC {best.ncc:.2f}, side-peak ratio {best.side_ratio:.2f}" if best else "no match"
        raise AlignmentError(
            f"alignment not confident: {len(agree)} of {len(matches)} probe windows agree ({detail}; "
            f"need NCC ≥ {o.min_ncc:.2f} in two windows within {o.agree_ms:.0f} ms)"
        )
    offsets = sorted(m.offset for m in agree)
    offset = offsets[len(offsets) // 2]
    spread = (offsets[-1] - offsets[0]) / SAMPLE_RATE_HZ * 1000
    conf = min(m.ncc for m in agree)
    frac = float(np.median([m.frac for m in agree]))
    error_ms = max(spread, abs(frac) / SAMPLE_RATE_HZ * 1000) + 0.5 / SAMPLE_RATE_HZ * 1000
    return Alignment(offset, "xcorr", conf, error_ms, ncc=conf, probes=_describe(agree, matches, offset))


def _describe(agree: Sequence[Match], matches: Sequence[Match], offset: int) -> str:
    """``agreeing/tried: offset-from-result@ncc …`` for the record."""
    parts = [f"{(m.offset - offset) / SAMPLE_RATE_HZ * 1000:+.2f}ms@{m.ncc:.3f}" for m in matches]
    return f"{len(agree)}/{len(matches)}: " + " ".join(parts)


def align_timestamps(
    offset: int, reference: Audio | None, new: Audio, options: AlignOptions | None = None
) -> Alignment:
    """``offset`` from media timestamps, checked against the overlapping audio when there is any
    loud enough; see the module docstring for when it is refused."""
    o = options or AlignOptions()
    if reference is None:
        return Alignment(offset, "timestamps", 1.0, 0.5 / SAMPLE_RATE_HZ * 1000, note="not checked: no overlap")
    verify = round(o.verify_search_ms / 1000 * SAMPLE_RATE_HZ)
    usable = (reference.start - offset + verify, reference.end - offset - verify)
    windows = probe_windows(new, usable, o)
    if not windows:
        return Alignment(offset, "timestamps", 1.0, 0.5 / SAMPLE_RATE_HZ * 1000, note="not checked: overlap silent")
    matches = [m for w in windows if (m := match_probe(reference, w, offset, verify, o)) is not None]
    good = [m for m in matches if m.ncc >= o.min_ncc]
    tol = o.timestamp_tolerance_ms / 1000 * SAMPLE_RATE_HZ
    if good:
        residuals = sorted(m.offset - offset for m in good)
        residual = residuals[len(residuals) // 2]
        if abs(residual) <= tol:
            conf = min(m.ncc for m in good)
            return Alignment(
                offset,
                "timestamps",
                conf,
                max(abs(residual), 1) / SAMPLE_RATE_HZ * 1000,
                ncc=conf,
                residual_ms=residual / SAMPLE_RATE_HZ * 1000,
                probes=_describe(good, matches, offset),
            )
    # The audio does not sit where the timestamps say: trust the audio if it is confident.
    try:
        found = align_xcorr(reference, new, offset, o)
    except AlignmentError as e:
        raise AlignmentError(f"timestamps not confirmed by the audio, and {e}") from e
    residual_ms = (offset - found.offset) / SAMPLE_RATE_HZ * 1000
    return Alignment(
        found.offset,
        "xcorr",
        found.confidence,
        found.error_ms,
        ncc=found.ncc,
        residual_ms=residual_ms,
        probes=found.probes,
        note=f"timestamps disagreed with the audio by {residual_ms:.0f} ms; used the audio",
    )


def align_wallclock(offset: int, error_ms: float) -> Alignment:
    """An offset from the two instances' start times alone (nothing overlaps to check it)."""
    return Alignment(offset, "wallclock", 0.0, error_ms, note="no overlap and no timestamps: placed by wall clock")


def wallclock_prior(old: Sequence[tuple[int, float]], new: Sequence[tuple[int, float]]) -> int:
    """Offset between two clocks from when their chunks arrived: ``(end_sample, arrived_at)`` pairs of
    each. Each pair gives ``end_sample - arrived_at * rate``; the median of each side is robust to
    the odd late chunk."""
    if not old or not new:
        raise AlignmentError("no audio arrival times to estimate the offset from")
    a = float(np.median([s - t * SAMPLE_RATE_HZ for s, t in old]))
    b = float(np.median([s - t * SAMPLE_RATE_HZ for s, t in new]))
    return round(a - b)


__all__ = [
    "METHODS",
    "SAMPLE_RATE_HZ",
    "AlignOptions",
    "Alignment",
    "Audio",
    "ClockRef",
    "Match",
    "Method",
    "align_timestamps",
    "align_wallclock",
    "align_xcorr",
    "dbfs",
    "match_probe",
    "ncc_curve",
    "probe_windows",
    "wallclock_prior",
]
