"""The ASR engine protocol: transcribe one segment's samples into timed words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from ..constants import DEFAULT_LANGUAGE
from ..records import Word


@dataclass(frozen=True)
class AsrOptions:
    """Decoding options for one session.

    Attributes:
        language: spoken language (ISO code); the ``.en`` models only know English.
        vocabulary: names and terms the decoder should prefer (hotwords).
        beam_size: 1 is greedy decoding, the fastest on CPU.
        draft: a provisional decode (interim text of audio still arriving): one greedy pass, no
            fallbacks and no coverage check, as cheap as a decode can be.
    """

    language: str = DEFAULT_LANGUAGE
    vocabulary: tuple[str, ...] = field(default_factory=tuple)
    beam_size: int = 1
    draft: bool = False


@runtime_checkable
class AsrEngine(Protocol):
    """Turns audio into words. Implementations must be safe to call from several threads."""

    name: str

    def transcribe(self, samples: np.ndarray, options: AsrOptions) -> list[Word]:
        """Words with times in seconds from the first sample of ``samples``."""
        ...


__all__ = ["AsrEngine", "AsrOptions"]
