"""This process's speech recogniser: one faster-whisper model and the thread pool its decodes run on,
shared by every job of the process (segments' finals, the capture instance's drafts, batch files).

Finals and drafts share the pool; ``busy`` counts the decodes submitted and not finished, so a
draft can be skipped while the pool is taken by finals (partials thin out, finals keep their
latency). Loaded once per (model, threads), off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from couchpotato.asr import AsrOptions, FasterWhisperEngine
from couchpotato.records import Word


@dataclass
class AsrPool:
    """A model and its decoding threads.

    Attributes:
        engine: the faster-whisper engine.
        executor: ``threads`` decoding threads.
        threads: decodes run at once.
        busy: decodes submitted and not finished (changed on the event loop only).
    """

    engine: FasterWhisperEngine
    executor: ThreadPoolExecutor
    threads: int
    busy: int = 0

    @property
    def free(self) -> bool:
        """Whether a decoding thread is idle now."""
        return self.busy < self.threads

    async def transcribe(self, samples: np.ndarray, options: AsrOptions) -> list[Word]:
        """Words of ``samples`` (times from their start); raises AsrError."""
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.executor, self.engine.transcribe, samples, options
            )
        finally:
            self.busy -= 1


_pools: dict[tuple[str, int], AsrPool] = {}
_lock = threading.Lock()


def _load(model: str, threads: int) -> AsrPool:
    with _lock:
        key = (model, threads)
        if key not in _pools:
            executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="asr")
            _pools[key] = AsrPool(FasterWhisperEngine(model, workers=threads), executor, threads)
        return _pools[key]


async def asr_pool(model: str, threads: int) -> AsrPool:
    """This process's pool for ``model`` with ``threads`` threads (loaded on first use)."""
    return await asyncio.to_thread(_load, model, threads)


__all__ = ["AsrPool", "asr_pool"]
