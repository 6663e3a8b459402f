"""Settings of the core, read from the environment once, at the edge (the CLI, the service).

Everything below takes explicit arguments; only this module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .constants import DEFAULT_MODEL
from .errors import ConfigError
from .urlguard import UrlGuard


@dataclass(frozen=True)
class CoreSettings:
    """Attributes:
    url_allowlist: ``COUCHPOTATO_URL_ALLOWLIST``, CIDRs and hosts untrusted URLs may reach.
    asr_url: ``COUCHPOTATO_ASR``, e.g. ``faster-whisper://tiny.en``, ``faster-whisper:///models/x``, or
        ``faster-whisper://large-v3?device=cuda&compute_type=float16`` on a GPU.
    """

    url_allowlist: str = ""
    asr_url: str = f"faster-whisper://{DEFAULT_MODEL}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CoreSettings:
        env = os.environ if env is None else env
        return cls(
            url_allowlist=env.get("COUCHPOTATO_URL_ALLOWLIST", ""),
            asr_url=env.get("COUCHPOTATO_ASR", "") or f"faster-whisper://{DEFAULT_MODEL}",
        )

    def guard(self) -> UrlGuard:
        return UrlGuard.from_allowlist(self.url_allowlist)

    def asr_model(self) -> str:
        """The faster-whisper model named by ``asr_url``."""
        parts = urlsplit(self.asr_url)
        if parts.scheme != "faster-whisper":
            raise ConfigError(f"COUCHPOTATO_ASR={self.asr_url!r}: this build has only faster-whisper:// engines")
        model = (parts.netloc + parts.path).strip()
        if not model:
            raise ConfigError(f"COUCHPOTATO_ASR={self.asr_url!r} names no model")
        if parts.query:  # ?device=cuda&compute_type=float16: checked by the engine (ModelSpec)
            from .asr.whisper import ModelSpec
            from .errors import AsrError

            try:
                ModelSpec.parse(f"{model}?{parts.query}")
            except AsrError as e:
                raise ConfigError(f"COUCHPOTATO_ASR={self.asr_url!r}: {str(e).split(': ', 1)[-1]}") from e
            return f"{model}?{parts.query}"
        return model


__all__ = ["CoreSettings"]
