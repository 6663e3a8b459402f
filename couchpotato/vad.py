"""Streaming voice activity detection with the Silero VAD model that ships inside faster-whisper.

``StreamingVad`` scores audio in 32 ms windows as it arrives, carrying the model's recurrent state
and the 64-sample context across calls, so feeding audio in pieces gives the same probabilities as
faster-whisper's whole-file ``get_speech_timestamps``. The ONNX session is loaded once per process
and shared; each stream has its own state.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .constants import VAD_CONTEXT_SAMPLES, VAD_WINDOW_SAMPLES


@functools.cache
def _session() -> Any:
    from faster_whisper.vad import get_vad_model

    return get_vad_model().session


class StreamingVad:
    """Speech probability per 32 ms window, fed incrementally."""

    def __init__(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    @property
    def pending_samples(self) -> int:
        """Samples received but not yet scored (less than one window)."""
        return len(self._pending)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities for every whole window completed by ``samples`` (possibly none)."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = len(audio) // VAD_WINDOW_SAMPLES
        self._pending = audio[n * VAD_WINDOW_SAMPLES :]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        windows = audio[: n * VAD_WINDOW_SAMPLES].reshape(n, VAD_WINDOW_SAMPLES)
        contexts = np.empty((n, VAD_CONTEXT_SAMPLES), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -VAD_CONTEXT_SAMPLES:]
        self._context = windows[-1, -VAD_CONTEXT_SAMPLES:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        out, self._h, self._c = _session().run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)


__all__ = ["StreamingVad"]
