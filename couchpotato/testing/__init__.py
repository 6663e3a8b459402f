"""Test and benchmark helpers: generated speech, media servers, live HLS, word error rate.

Used by tests/ and benchmarks/; nothing in the product imports it. Needs espeak-ng, flite and
ffmpeg on PATH, and jiwer (a dev dependency) for ``wer``.
"""

from __future__ import annotations

from .media import (
    Programme,
    build_programme,
    corpus_paragraphs,
    hls_live,
    serve_directory,
    serve_in_turns,
    synthesize,
)
from .rtsp import rtsp_available, rtsp_live
from .wer import normalise, wer

__all__ = [
    "Programme",
    "build_programme",
    "corpus_paragraphs",
    "hls_live",
    "normalise",
    "rtsp_available",
    "rtsp_live",
    "serve_directory",
    "serve_in_turns",
    "synthesize",
    "wer",
]
