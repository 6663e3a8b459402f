"""Cutting a PCM stream into segments, in pauses, for independent transcription.

The policy, measured on the benchmark corpus (benchmarks/README.md): a segment is never shorter
than ``min_segment_s``; until ``target_segment_s`` it is cut only in a long pause (end of a
sentence); after that any short pause (a word gap) will do; at ``max_segment_s`` it is cut at the
quietest point inside speech, and the two neighbours then share ``overlap_ms`` of audio whose words
are merged by the resequencer (a word belongs to the segment whose owned span holds its centre).
Silence is trimmed from a segment's audio, and a span without speech gets no segment (and no seq).

The segmenter is synchronous and pure apart from the VAD's state: feed it ``PcmChunk``s, get
``AudioSegment``s with gapless ``seq``s. A jump in the media clock (a live source reconnected)
closes the open segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import constants as C
from .decoder import PcmChunk
from .errors import ConfigError
from .records import Segment
from .vad import StreamingVad

WINDOW_S = C.VAD_WINDOW_SAMPLES / C.SAMPLE_RATE_HZ


@dataclass(frozen=True)
class SegmenterOptions:
    """How audio is cut.

    Attributes:
        min_segment_s: never cut a segment shorter than this.
        target_segment_s: before this length, cut only in a pause of ``long_pause_ms``.
        max_segment_s: at this length, cut inside speech (with an overlap).
        long_pause_ms: a pause that ends a sentence.
        short_pause_ms: a pause between words, enough once a segment has reached its target.
        overlap_ms: audio shared by both sides of a cut inside speech.
        context_ms: audio before its owned span that every segment is transcribed with (the words
            in it belong to the previous segment; they give the decoder a lead-in).
        draft_context_ms: the lead-in of an interim decode of the open segment (``open_audio``):
            shorter than ``context_ms``, as a draft runs every second and only needs to hear the
            last words of the segment cut before it.
        lead_in_max_pause_ms: the lead-in never reaches back across a pause longer than this (what
            was said before a break tells the decoder little, and long silence invites Whisper to
            hallucinate).
        speech_pad_ms: silence kept around the speech of a segment.
        speech_threshold: VAD probability from which a window is speech.
        silence_threshold: VAD probability under which a window is silence.
    """

    min_segment_s: float = C.MIN_SEGMENT_S
    target_segment_s: float = C.TARGET_SEGMENT_S
    max_segment_s: float = C.MAX_SEGMENT_S
    long_pause_ms: float = C.LONG_PAUSE_MS
    short_pause_ms: float = C.SHORT_PAUSE_MS
    overlap_ms: float = C.OVERLAP_MS
    context_ms: float = C.CONTEXT_MS
    draft_context_ms: float = C.DRAFT_CONTEXT_MS
    lead_in_max_pause_ms: float = C.LEAD_IN_MAX_PAUSE_MS
    speech_pad_ms: float = C.SPEECH_PAD_MS
    speech_threshold: float = C.VAD_SPEECH_THRESHOLD
    silence_threshold: float = C.VAD_SILENCE_THRESHOLD

    def __post_init__(self) -> None:
        if not 0 < self.min_segment_s <= self.target_segment_s <= self.max_segment_s:
            raise ConfigError("segment lengths must satisfy 0 < min <= target <= max")
        if self.max_segment_s > 28:
            raise ConfigError("max_segment_s must be at most 28 s (one Whisper window)")
        if self.overlap_ms < 0 or self.overlap_ms / 2000 > self.min_segment_s:
            # half of the overlap lies before the cut: it must not reach back past the segment's start
            raise ConfigError("overlap_ms must be between 0 and twice min_segment_s")
        if self.lead_in_max_pause_ms < 0:
            raise ConfigError("lead_in_max_pause_ms must be 0 or more")
        if not 0 <= self.context_ms <= C.MAX_CONTEXT_MS:
            raise ConfigError(f"context_ms must be between 0 and {C.MAX_CONTEXT_MS:.0f}")
        if not 0 <= self.draft_context_ms <= C.MAX_CONTEXT_MS:
            raise ConfigError(f"draft_context_ms must be between 0 and {C.MAX_CONTEXT_MS:.0f}")
        if self.context_ms / 1000 + self.max_segment_s + self.overlap_ms / 2000 > 28:
            raise ConfigError("a segment with its lead-in and overlap must fit one Whisper window (28 s)")

    @classmethod
    def for_latency(cls, profile: str) -> SegmenterOptions:
        """The options of a named latency profile (``LATENCY_PROFILES``)."""
        try:
            return cls(**LATENCY_PROFILES[profile])
        except KeyError:
            raise ConfigError(
                f"unknown latency profile {profile!r}: pick one of {', '.join(LATENCY_PROFILES)}"
            ) from None

    @classmethod
    def coerce(cls, value: SegmenterOptions | dict[str, Any] | None) -> SegmenterOptions:
        if value is None:
            return cls()
        if isinstance(value, SegmenterOptions):
            return value
        return cls(**value)


# Named trade-offs between word latency, accuracy and CPU (figures: benchmarks/results/accuracy.md
# and latency.md). Every profile decodes a segment with the speech before it as a lead-in (the
# words heard there belong to the previous segment; the resequencer merges them away).
# ``balanced`` (the default) cuts in pauses at most every 4 s, with 8 s of lead-in: as accurate as
# whole-file decoding on the tuning split, final text in about 3 s. ``low`` cuts at most every 3 s:
# final text about half a second sooner, for about a fifth more ASR work. ``efficient`` cuts in
# pauses, 4–9 s, with 4 s of lead-in: about as accurate, half the ASR work of ``balanced``, but a
# word waits up to 9 s for its segment to close: for many streams on a small machine, or recordings.
# Where a cut falls inside speech, both sides hear ``overlap_ms / 2`` across it.
LATENCY_PROFILES: dict[str, dict[str, float]] = {
    "balanced": {},
    "low": {
        "min_segment_s": 1.5,
        "target_segment_s": 3.0,
        "max_segment_s": 3.0,
        "overlap_ms": 3000,
    },
    "efficient": {
        "min_segment_s": 4.0,
        "target_segment_s": 6.0,
        "max_segment_s": 9.0,
        "overlap_ms": 2000,
        "context_ms": 4000,
    },
}


@dataclass(frozen=True, slots=True)
class AudioSegment:
    """A Segment and its samples (from ``segment.start`` to ``segment.end``)."""

    segment: Segment
    samples: np.ndarray


def _frames(ms: float) -> int:
    return max(1, round(ms / 1000 / WINDOW_S))


PRIME_WARMUP_S = 2.0  # audio a primed segmenter's VAD hears before the lead-in context


class Segmenter:
    """Stateful cutter of one PCM stream into AudioSegments."""

    def __init__(
        self,
        session_id: str,
        options: SegmenterOptions | dict[str, Any] | None = None,
        *,
        epoch: int = 0,
        first_seq: int = 0,
    ) -> None:
        self.options = SegmenterOptions.coerce(options)
        self.session_id = session_id
        self.epoch = epoch
        self.next_seq = first_seq
        o = self.options
        self._min_w = _frames(o.min_segment_s * 1000)
        self._target_w = _frames(o.target_segment_s * 1000)
        self._max_w = _frames(o.max_segment_s * 1000)
        self._long_w = _frames(o.long_pause_ms)
        self._short_w = _frames(o.short_pause_ms)
        self._half_ov_w = round(o.overlap_ms / 2000 / WINDOW_S)
        self._ctx_w = round(o.context_ms / 1000 / WINDOW_S)
        self._draft_ctx_w = min(self._ctx_w, round(o.draft_context_ms / 1000 / WINDOW_S))  # only what is kept
        self._pad_w = round(o.speech_pad_ms / 1000 / WINDOW_S)
        self._lead_gap_w = round(o.lead_in_max_pause_ms / 1000 / WINDOW_S)
        self._expected_sample: int | None = None
        self._restart(0)

    def _restart(self, origin: int) -> None:
        self._vad = StreamingVad()
        self._origin = origin  # media sample of window 0
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = origin  # media sample of _buf[0]
        self._probs: list[float] = []
        self._seg_w = 0  # window where the open segment's owned span starts
        self._prev_forced = False

    # --- public API ---------------------------------------------------------------------------

    def push(self, chunk: PcmChunk) -> list[AudioSegment]:
        """Feed audio; returns the segments it completes."""
        out: list[AudioSegment] = []
        if self._expected_sample is not None and chunk.start_sample != self._expected_sample:
            out += self.flush()
            self._restart(chunk.start_sample)
        elif self._expected_sample is None and chunk.start_sample != 0:
            self._restart(chunk.start_sample)
        self._expected_sample = chunk.end_sample
        self._buf = np.concatenate([self._buf, chunk.samples.astype(np.float32, copy=False)])
        for p in self._vad.process(chunk.samples):
            self._probs.append(float(p))
            seg = self._decide(len(self._probs) - 1)
            if seg is not None:
                out.append(seg)
        return out

    def prime(self, lead_in: PcmChunk) -> None:
        """Start the stream with audio that comes before the first sample this segmenter owns (a
        swapped-in capture instance starts at the previous instance's cut): it is heard by the VAD
        and serves as the first segment's lead-in context, but no segment owns it. Call before the
        first ``push``, which must continue at ``lead_in.end_sample``; a leading partial VAD window
        of ``lead_in`` is dropped so the owned span starts on a window boundary."""
        if self._expected_sample is not None:
            raise RuntimeError("prime() must come before the first push()")
        n = len(lead_in.samples) // C.VAD_WINDOW_SAMPLES * C.VAD_WINDOW_SAMPLES
        samples = lead_in.samples[len(lead_in.samples) - n :].astype(np.float32, copy=True)
        self._restart(lead_in.end_sample - n)
        self._expected_sample = lead_in.end_sample
        self._buf = samples
        self._probs = [float(p) for p in self._vad.process(samples)]
        self._seg_w = len(self._probs)

    def lead_in_samples(self) -> int:
        """How much audio before the first owned sample ``prime`` should get (whole VAD windows): the
        lead-in context and padding, plus ``PRIME_WARMUP_S`` for the VAD's state to settle (a cold
        Silero VAD can miss the first words it hears, which would then not count as lead-in)."""
        warmup = round(PRIME_WARMUP_S / WINDOW_S)
        return (self._ctx_w + self._pad_w + warmup) * C.VAD_WINDOW_SAMPLES

    def flush(self) -> list[AudioSegment]:
        """End of stream: the open segment, including a last partial window, if it holds speech."""
        end_sample = self._buf_start + len(self._buf)
        seg = self._emit(self._seg_w, None, forced=False, end_sample=end_sample)
        self._seg_w = len(self._probs)
        self._prev_forced = False
        return [seg] if seg is not None else []

    # --- policy -------------------------------------------------------------------------------

    def _decide(self, i: int) -> AudioSegment | None:
        """Called as window ``i`` is scored: cut if the policy says so."""
        o = self.options
        length = i + 1 - self._seg_w
        if length < self._min_w:
            return None
        need = self._long_w if length < self._target_w else self._short_w
        run_start = i - need + 1
        if run_start >= self._seg_w and all(p < o.silence_threshold for p in self._probs[run_start : i + 1]):
            j = run_start
            while j > self._seg_w and self._probs[j - 1] < o.silence_threshold:
                j -= 1
            return self._cut((j + i + 1) // 2, forced=False)
        if length >= self._max_w:
            lo = self._seg_w + self._min_w
            hi = i + 1 - self._half_ov_w  # the right side of the overlap must already be here
            if hi <= lo:
                hi = lo + 1
            c = lo + int(np.argmin(self._probs[lo:hi]))
            return self._cut(c, forced=True)
        return None

    def _cut(self, c: int, *, forced: bool) -> AudioSegment | None:
        seg = self._emit(self._seg_w, c, forced=forced, end_sample=None)
        self._seg_w = c
        self._prev_forced = forced
        # Keep only what the next segment may still need: its left overlap.
        keep_from = self._sample(c - max(self._half_ov_w, self._ctx_w) - self._pad_w)
        drop = max(0, keep_from - self._buf_start)
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return seg

    def _emit(self, s: int, c: int | None, *, forced: bool, end_sample: int | None) -> AudioSegment | None:
        n = len(self._probs)
        c_w = n if c is None else c
        a0 = s - max(self._half_ov_w if self._prev_forced else 0, self._ctx_w)
        a1 = min(n, c_w + self._half_ov_w) if forced else c_w
        a0 = max(a0, 0)
        span = self._speech_span(s, a0, a1)
        if span is None:
            return None  # no speech in the span this segment owns
        t0, last = span
        t1 = min(a1, last + 1 + self._pad_w)
        start_sample = self._sample(t0)
        stop_sample = self._sample(t1)
        keep_end_sample = self._sample(c_w)
        if c is None and end_sample is not None:
            # The stream's last (partial) window belongs to the final segment.
            if t1 == a1:
                stop_sample = end_sample
            keep_end_sample = end_sample
        seg = self._cut_out(start_sample, stop_sample, self._sample(s), keep_end_sample)
        self.next_seq += 1
        return seg

    def _cut_out(self, start: int, stop: int, keep_start: int, keep_end: int) -> AudioSegment:
        """The AudioSegment of ``next_seq`` with the buffered samples ``start``–``stop``."""
        samples = self._buf[max(0, start - self._buf_start) : max(0, stop - self._buf_start)]
        sr = C.SAMPLE_RATE_HZ
        segment = Segment(
            session_id=self.session_id,
            seq=self.next_seq,
            start=start / sr,
            end=stop / sr,
            keep_start=keep_start / sr,
            keep_end=keep_end / sr,
            epoch=self.epoch,
        )
        return AudioSegment(segment, samples.copy())

    def _speech_span(self, s: int, a0: int, a1: int, ctx_w: int | None = None) -> tuple[int, int] | None:
        """Where the audio of a segment owning windows from ``s`` starts (its lead-in of ``ctx_w``
        windows included, padded) and its last speech window, looking at windows ``a0``–``a1``;
        None without speech in the owned part."""
        ctx_w = self._ctx_w if ctx_w is None else ctx_w
        probs = np.asarray(self._probs[a0:a1], dtype=np.float32)
        speech = np.flatnonzero(probs >= self.options.speech_threshold) + a0
        owned = speech[speech >= s]
        if not len(owned):
            return None
        # Lead-in context: the speech just before this segment's first word, up to the context's
        # length, but not across a long pause (see lead_in_max_pause_ms).
        lead = speech[(speech >= int(owned[0]) - ctx_w) & (speech < int(owned[0]))]
        if len(lead):
            gaps = np.diff(np.append(lead, int(owned[0])))
            breaks = np.flatnonzero(gaps > self._lead_gap_w)
            if len(breaks):
                lead = lead[int(breaks[-1]) + 1 :]
        first = int(lead[0]) if len(lead) else int(owned[0])
        return max(a0, first - self._pad_w), int(speech[-1])

    def open_audio(self) -> AudioSegment | None:
        """The open segment's audio so far, with a lead-in of ``draft_context_ms`` (at most
        ``context_ms``), under the seq it will be committed with (its ``keep_end``/``end``: the
        audio heard so far); None before it holds speech. For interim decodes: nothing changes, the
        segment may still be cut anywhere."""
        n = len(self._probs)
        s = self._seg_w
        a0 = max(0, s - max(self._half_ov_w if self._prev_forced else 0, self._draft_ctx_w))
        span = self._speech_span(s, a0, n, self._draft_ctx_w)
        if span is None:
            return None
        stop_sample = self._sample(n)
        return self._cut_out(self._sample(span[0]), stop_sample, self._sample(s), stop_sample)

    def _sample(self, window: int) -> int:
        return self._origin + max(0, window) * C.VAD_WINDOW_SAMPLES


__all__ = ["LATENCY_PROFILES", "AudioSegment", "Segmenter", "SegmenterOptions"]
