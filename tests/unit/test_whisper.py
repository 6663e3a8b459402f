"""The faster-whisper engine's decoding ladder: greedy, then a wider beam, then sampling.

CTranslate2's answers are stood in for by a recorder (``Decodes``) so each rung can be driven; the
engine around it (thresholds, word assembly, the ladder) is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from couchpotato.asr import AsrOptions, FasterWhisperEngine
from couchpotato.asr.whisper import ModelSpec, token_budget
from couchpotato.constants import (
    FALLBACK_BEAM_SIZE,
    MAX_TOKEN_BUDGET,
    MIN_TOKEN_BUDGET,
    SAMPLE_RATE_HZ,
    SAMPLING_TEMPERATURES,
)
from couchpotato.errors import AsrError, ConfigError
from couchpotato.settings import CoreSettings

AUDIO = np.zeros(4 * SAMPLE_RATE_HZ, dtype=np.float32)  # 4 s: what is in it does not matter here


def window(text: str, start: float, *, logprob: float = -0.3, ratio: float = 1.2) -> SimpleNamespace:
    """A faster-whisper segment: one decoded window's words, each 0.3 s long."""
    words = [
        SimpleNamespace(start=start + 0.3 * i, end=start + 0.3 * (i + 1), word=f" {w}", probability=0.9)
        for i, w in enumerate(text.split())
    ]
    return SimpleNamespace(avg_logprob=logprob, compression_ratio=ratio, words=words)


@dataclass
class Decodes:
    """Answers by rung: ``greedy`` (beam 1, temperature 0), ``beam`` (temperature 0, wider beam),
    ``sampling``; records the decoding options of every call."""

    answers: dict[str, list[SimpleNamespace]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def transcribe(self, samples: np.ndarray, **kw: Any) -> tuple[list[SimpleNamespace], None]:
        self.calls.append(kw)
        greedy = "beam" if kw["beam_size"] > 1 else "greedy"
        rung = greedy if kw["temperature"] == [0.0] else "sampling"
        return self.answers[rung], None


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine("tiny.en", workers=1, short_window=False)


def run(engine: FasterWhisperEngine, answers: dict[str, list[SimpleNamespace]]) -> tuple[str, Decodes]:
    decodes = Decodes(answers)
    engine._model, real = decodes, engine._model
    engine.retries.clear()
    try:
        words = engine.transcribe(AUDIO, AsrOptions())
    finally:
        engine._model = real
    return "".join(w.word for w in words).strip(), decodes


def test_a_confident_greedy_decode_is_final(engine: FasterWhisperEngine) -> None:
    text, decodes = run(engine, {"greedy": [window("the council met on tuesday", 0.0)]})
    assert text == "the council met on tuesday"
    assert len(decodes.calls) == 1
    assert decodes.calls[0]["temperature"] == [0.0] and decodes.calls[0]["beam_size"] == 1
    assert not engine.retries


def test_a_doubtful_greedy_decode_is_tried_again_with_a_wider_beam_not_by_sampling(
    engine: FasterWhisperEngine,
) -> None:
    answers = {
        "greedy": [window("the", 0.0, logprob=-2.1)],  # greedy stopped after one word
        "beam": [window("opponents said the cost was too high", 0.0)],
    }
    text, decodes = run(engine, answers)
    assert text == "opponents said the cost was too high"
    assert [c["beam_size"] for c in decodes.calls] == [1, FALLBACK_BEAM_SIZE]
    assert all(c["temperature"] == [0.0] for c in decodes.calls)
    assert engine.retries == {"beam": 1}


def test_repetitive_text_counts_as_doubtful(engine: FasterWhisperEngine) -> None:
    answers = {
        "greedy": [window("next video next video next video", 0.0, logprob=-0.2, ratio=9.0)],
        "beam": [window("see you next week", 0.0)],
    }
    text, _ = run(engine, answers)
    assert text == "see you next week"


def test_sampling_is_the_last_resort(engine: FasterWhisperEngine) -> None:
    answers = {
        "greedy": [window("the", 0.0, logprob=-2.1)],
        "beam": [window("the the", 0.0, logprob=-1.6)],
        "sampling": [window("the library opens on sundays", 0.0, logprob=-0.8)],
    }
    text, decodes = run(engine, answers)
    assert text == "the library opens on sundays"
    assert decodes.calls[-1]["temperature"] == list(SAMPLING_TEMPERATURES)
    assert engine.retries == {"beam": 1, "sampling": 1}


def test_a_doubtful_window_whose_words_are_dropped_as_tail_noise_is_not_decoded_again(
    engine: FasterWhisperEngine,
) -> None:
    tail = SimpleNamespace(
        avg_logprob=-1.5,
        compression_ratio=0.7,
        words=[SimpleNamespace(start=3.9, end=3.92, word=" Thanks.", probability=0.2)],
    )
    text, decodes = run(engine, {"greedy": [window("good evening", 0.0), tail]})
    assert text == "good evening"
    assert len(decodes.calls) == 1


def test_punctuation_split_off_a_word_is_joined_once(engine: FasterWhisperEngine) -> None:
    split = SimpleNamespace(
        avg_logprob=-0.3,
        compression_ratio=1.0,
        words=[
            SimpleNamespace(start=0.0, end=0.5, word=" specialists.", probability=0.9),
            SimpleNamespace(start=0.5, end=0.6, word=".", probability=0.5),
            SimpleNamespace(start=0.7, end=1.0, word=" Next", probability=0.9),
            SimpleNamespace(start=1.0, end=1.1, word=",", probability=0.9),
        ],
    )
    text, _ = run(engine, {"greedy": [split]})
    assert text == "specialists. Next,"


def test_every_try_of_the_ladder_has_a_token_budget_for_its_audio(engine: FasterWhisperEngine) -> None:
    """tiny.en loops on repetitive text ("it was the age of, it was the age of …") until Whisper's
    448 tokens, on every rung of the fallback ladder: each decode is bounded by its audio's length."""
    answers = {
        "greedy": [window("it was the age it was the age it was the age", 0.0, ratio=9.0)],
        "beam": [window("it was the age it was the age it was the age", 0.0, ratio=9.0)],
        "sampling": [window("it was the age of wisdom", 0.0)],
    }
    _, decodes = run(engine, answers)
    assert len(decodes.calls) >= 3
    assert {c["max_new_tokens"] for c in decodes.calls} == {token_budget(len(AUDIO) / SAMPLE_RATE_HZ)}
    assert token_budget(0.5) == MIN_TOKEN_BUDGET < token_budget(4.0) < token_budget(12.0) < MAX_TOKEN_BUDGET
    assert token_budget(28.0) == MAX_TOKEN_BUDGET
    # fast speech is about 5 tokens a second: the budget leaves room for timestamps and a silent tail
    assert token_budget(6.0) >= 3 * 5 * 6.0


def test_the_model_spec_names_a_device_and_refuses_what_it_does_not_know() -> None:
    assert ModelSpec.parse("tiny.en") == ModelSpec("tiny.en", "cpu", "int8")
    assert ModelSpec.parse("large-v3?device=cuda") == ModelSpec("large-v3", "cuda", "float16")
    assert ModelSpec.parse("/m/x?device=cuda&compute_type=int8_float16").compute_type == "int8_float16"
    with pytest.raises(AsrError, match="device must be one of cpu, cuda, auto"):
        ModelSpec.parse("tiny.en?device=tpu")
    with pytest.raises(AsrError, match="unknown option beam"):
        ModelSpec.parse("tiny.en?beam=5")
    assert CoreSettings(asr_url="faster-whisper://large-v3?device=cuda").asr_model() == "large-v3?device=cuda"
    with pytest.raises(ConfigError, match="device must be one of"):
        CoreSettings(asr_url="faster-whisper://tiny.en?device=tpu").asr_model()


def test_a_gpu_asked_for_where_there_is_none_is_one_clear_error() -> None:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA device: the refusal is not what happens here")
    with pytest.raises(AsrError, match=r"cannot load ASR model 'tiny\.en': .*CUDA"):
        FasterWhisperEngine("tiny.en?device=cuda", workers=1)
