"""Word error rate as the field reports it: after Whisper's English text normaliser.

``EnglishTextNormalizer`` (PyPI ``whisper-normalizer``, the convention of the Open ASR Leaderboard)
folds case, punctuation, spelling variants and number forms, so "55" and "fifty five" are one word
and "neighbourhood" is "neighborhood". Both are dev dependencies: tests and benchmarks score with
them, the product never imports this module.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _normaliser() -> Any:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalise(text: str) -> str:
    """``text`` as Whisper's English normaliser leaves it (lower case, one space between words)."""
    return " ".join(str(_normaliser()(text)).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference``, as a fraction, after normalising."""
    import jiwer

    ref = normalise(reference)
    hyp = normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


__all__ = ["normalise", "wer"]
