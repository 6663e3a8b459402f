"""ASR engines behind one protocol; faster-whisper is the default."""

from __future__ import annotations

from .base import AsrEngine, AsrOptions
from .whisper import FasterWhisperEngine

__all__ = ["AsrEngine", "AsrOptions", "FasterWhisperEngine"]
