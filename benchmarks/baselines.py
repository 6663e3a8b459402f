"""Baselines for bench_core.py, run in their own process so CPU and memory are measured alike.

    python benchmarks/baselines.py whole|chunks5 AUDIO  -> one JSON line: {"text": ...}

``whole``: one faster-whisper ``model.transcribe`` of the whole file (tiny.en, int8, beam 1, Whisper's
own fallbacks, ``vad_filter=True`` so that its long-form decoding does not stop early): the accuracy
reference, as benchmarks/bench_accuracy.py runs it.
``chunks5``: the naive approach — fixed 5 s chunks transcribed independently.
"""

from __future__ import annotations

import json
import sys

from couchpotato.asr import AsrOptions, FasterWhisperEngine
from couchpotato.constants import SAMPLE_RATE_HZ


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    from faster_whisper import decode_audio

    audio = decode_audio(path, sampling_rate=SAMPLE_RATE_HZ)
    engine = FasterWhisperEngine(workers=1, short_window=False)
    if mode == "whole":
        segments, _ = engine._model.transcribe(audio, language="en", beam_size=1, vad_filter=True)
        text = "".join(s.text for s in segments)
    elif mode == "chunks5":
        step = 5 * SAMPLE_RATE_HZ
        text = " ".join(
            "".join(w.word for w in engine.transcribe(audio[i : i + step], AsrOptions()))
            for i in range(0, len(audio), step)
        )
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps({"text": text}))


if __name__ == "__main__":
    main()
