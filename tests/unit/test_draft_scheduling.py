"""Partials share the ASR pool with finals: a draft takes only a thread no final needs, so under load
finals keep their threads and partials thin out (couchpotato/pipeline.py). A stand-in engine with a
fixed decode time makes the load exact; the audio and its VAD are real."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from couchpotato.asr import AsrOptions
from couchpotato.decoder import PcmChunk
from couchpotato.pipeline import Pipeline, PipelineOptions
from couchpotato.records import Word
from couchpotato.testing import synthesize
from tests.conftest import requires_media_tools

SR = 16_000
TEXT = (
    "The council met on Tuesday evening to talk about the library. Several residents asked for longer "
    "opening hours on weekends. The mayor said that the budget would be published next month, and that "
    "the bridge would be repaired before the winter."
)


@dataclass
class TimedEngine:
    """Decodes nothing, takes ``decode_s`` per call, and records what ran when."""

    decode_s: float
    name: str = "timed"
    calls: list[tuple[float, float, bool]] = field(default_factory=list)  # (start, end, draft)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def transcribe(self, samples: np.ndarray, options: AsrOptions) -> list[Word]:
        t0 = time.monotonic()
        time.sleep(self.decode_s)
        with self._lock:
            self.calls.append((t0, time.monotonic(), options.draft))
        n = max(1, int(len(samples) / SR))
        return [Word(i + 0.1, i + 0.6, f" w{i}", 0.9) for i in range(n)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    from faster_whisper import decode_audio

    path = synthesize(TEXT, tmp_path_factory.mktemp("drafts") / "speech.wav")
    return np.asarray(decode_audio(str(path)), dtype=np.float32)


async def live(audio: np.ndarray, speed: float) -> AsyncIterator[PcmChunk]:
    step = SR // 10
    for i in range(0, len(audio), step):
        yield PcmChunk(i, audio[i : i + step])
        await asyncio.sleep(0.1 / speed)


async def run(audio: np.ndarray, engine: TimedEngine, speed: float) -> Pipeline:
    p = Pipeline(engine, PipelineOptions(asr_workers=2, partials=True, partial_interval_s=0.5))
    async for _ in p.events(live(audio, speed)):
        pass
    return p


def busy_finals(calls: list[tuple[float, float, bool]], at: float) -> int:
    return sum(1 for s, e, draft in calls if not draft and s <= at < e)


@requires_media_tools
async def test_a_draft_never_takes_a_thread_a_final_holds(speech: np.ndarray) -> None:
    engine = TimedEngine(decode_s=0.3)
    p = await run(speech, engine, speed=2.0)
    drafts = [c for c in engine.calls if c[2]]
    finals = [c for c in engine.calls if not c[2]]
    assert drafts and finals and p.stats.partials > 0
    assert all(busy_finals(finals, s) < 2 for s, _, _ in drafts), "a draft ran while every thread decoded a final"


@requires_media_tools
async def test_under_load_partials_thin_out_and_every_segment_still_commits(speech: np.ndarray) -> None:
    light_engine, heavy_engine = TimedEngine(decode_s=0.1), TimedEngine(decode_s=1.0)
    light = await run(speech, light_engine, speed=3.0)
    heavy = await run(speech, heavy_engine, speed=3.0)
    assert heavy.stats.committed == heavy.stats.segments == light.stats.segments, "every final, under load too"
    n_light = sum(1 for c in light_engine.calls if c[2])
    n_heavy = sum(1 for c in heavy_engine.calls if c[2])
    assert heavy.stats.drafts_skipped > 0 and n_heavy < n_light, (n_heavy, n_light)
    assert all(busy_finals(heavy_engine.calls, s) < 2 for s, _, d in heavy_engine.calls if d)
