"""Segmentation sweep: the pipeline's WER per segmenter configuration, on one split of the corpus.

    .venv/bin/python benchmarks/sweep_segmenter.py tune '{"name": {"max_segment_s": 4, ...}, ...}'

Each configuration's ``SegmenterOptions`` (keys as in ``couchpotato.segmenter.SegmenterOptions``;
``{}`` is the default profile) runs the in-process pipeline (same engine, resequencer and coverage
check as the CLI, tiny.en int8, 2 ASR threads) over every voice's programme of the split, fed as
fast as it is transcribed. Prints WER after Whisper's normaliser, pooled and per voice. Tune on
``tune``; the held-out split is for bench_accuracy.py's one evaluation run.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalset
from bench_accuracy import pooled_wer

from couchpotato.asr import FasterWhisperEngine
from couchpotato.decoder import PcmChunk
from couchpotato.pipeline import Pipeline, PipelineOptions
from couchpotato.segmenter import SegmenterOptions

SR = 16_000


def load(path: Path) -> np.ndarray:
    argv = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"]
    raw = subprocess.run(argv, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768


async def transcribe(engine: FasterWhisperEngine, audio: np.ndarray, options: SegmenterOptions) -> str:
    async def pcm() -> AsyncIterator[PcmChunk]:
        for i in range(0, len(audio), SR // 10):
            yield PcmChunk(i, audio[i : i + SR // 10])
            await asyncio.sleep(0)

    texts = []
    async for ev in Pipeline(engine, PipelineOptions(segmenter=options)).events(pcm()):
        if ev.type == "segment":
            texts.append(ev.text)
    return " ".join(texts)


def main() -> None:
    split, configs = sys.argv[1], json.loads(sys.argv[2])
    engine = FasterWhisperEngine("tiny.en", workers=2)
    programmes = evalset.build_split(split)
    audio = {p.voice: load(p.path) for p in programmes}
    for name, values in configs.items():
        options = SegmenterOptions(**values)
        t0, pairs, per_voice = time.time(), [], {}
        for p in programmes:
            hyp = asyncio.run(transcribe(engine, audio[p.voice], options))
            pairs.append((p.text, hyp))
            per_voice[p.voice] = 100 * pooled_wer([(p.text, hyp)])
        voices = " ".join(f"{v}={w:.2f}" for v, w in per_voice.items())
        print(f"{name:24s} pooled {100 * pooled_wer(pairs):6.2f}  {voices}  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
