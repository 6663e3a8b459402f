"""16-bit PCM, the one wire form of audio: signed little-endian 16-bit samples (FFmpeg's ``s16le``),
mono at ``SAMPLE_RATE_HZ``. In memory audio is float32 in [-1, 1]; these two functions are the
only place where one becomes the other (decoder output, audio blobs, kept audio, swap references)."""

from __future__ import annotations

import numpy as np

PCM16 = np.dtype("<i2")
PCM16_FULL_SCALE = 32768.0


def encode_pcm16(samples: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) as 16-bit little-endian PCM."""
    return bytes((np.clip(samples, -1.0, 1.0) * 32767.0).astype(PCM16).tobytes())


def decode_pcm16(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype=PCM16).astype(np.float32) / PCM16_FULL_SCALE


__all__ = ["decode_pcm16", "encode_pcm16"]
