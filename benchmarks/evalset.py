"""The evaluation corpus: public-domain texts × TTS voices, with pauses of realistic lengths.

    from evalset import build_split
    programmes = build_split("held-out")   # one Programme per voice, cached under /tmp

Texts live in ``evalset/texts.md``; each is marked ``tune`` (the segmenter and resequencer may be
tuned on it) or ``held-out`` (never tuned on). Every voice speaks every text of a split, one
sentence at a time; the sentences are joined with pauses drawn from 0.1–2 s (a fixed seed, so a
corpus is the same on every machine with the same TTS packages), and the texts with 2 s between
them. Each programme knows where every sentence lies, so a decode can be checked to cover all of
its speech.
"""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXTS = HERE / "evalset" / "texts.md"
CACHE = Path(tempfile.gettempdir()) / "couchpotato-bench" / "evalset"
SR = 16_000
TEXT_PAUSE_S = 2.0
SEED = 13

# name -> argv that speaks the text file given as {txt} into the WAV file {wav}
VOICES: dict[str, list[str]] = {
    "flite-slt": ["flite", "-voice", "slt", "-f", "{txt}", "-o", "{wav}"],
    "flite-awb": ["flite", "-voice", "awb", "-f", "{txt}", "-o", "{wav}"],
    "flite-rms": ["flite", "-voice", "rms", "-f", "{txt}", "-o", "{wav}"],
    "flite-kal": ["flite", "-voice", "kal16", "-f", "{txt}", "-o", "{wav}"],
    "espeak-us-slow-low": ["espeak-ng", "-v", "en-us", "-s", "145", "-p", "35", "-f", "{txt}", "-w", "{wav}"],
    "espeak-gb-fast-high": ["espeak-ng", "-v", "en-gb+f3", "-s", "185", "-p", "65", "-f", "{txt}", "-w", "{wav}"],
}
_SENTENCE = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<=[.!?])\s+(?=[A-Z])")


@dataclass(frozen=True)
class Sentence:
    text_id: str
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Programme:
    """One voice reading every text of a split: its WAV, what was said, and where."""

    split: str
    voice: str
    path: Path
    sentences: tuple[Sentence, ...]
    duration_s: float

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


def load_texts() -> list[tuple[str, str, str]]:
    """``(id, split, text)`` of every text in texts.md, in order."""
    out = []
    for block in TEXTS.read_text(encoding="utf-8").split("\n## ")[1:]:
        head, _, body = block.partition("\n")
        m = re.fullmatch(r"(\S+) \((tune|held-out)\)", head.strip())
        if not m:
            raise ValueError(f"bad heading in {TEXTS}: {head!r}")
        out.append((m.group(1), m.group(2), " ".join(body.split())))
    return out


def sentences_of(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def speak(sentence: str, voice: str) -> np.ndarray:
    """``sentence`` spoken by ``voice``: 16 kHz mono float32, leading and trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        txt, raw = Path(tmp) / "s.txt", Path(tmp) / "s.wav"
        txt.write_text(sentence, encoding="utf-8")
        argv = [a.format(txt=txt, wav=raw) for a in VOICES[voice]]
        subprocess.run(argv, check=True, capture_output=True)
        pcm = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(raw), "-ac", "1", "-ar", str(SR), "-f", "s16le", "-"],
            check=True,
            capture_output=True,
        ).stdout
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    if not len(loud):
        raise RuntimeError(f"{voice} said nothing for {sentence!r}")
    pad = int(0.03 * SR)
    return audio[max(0, loud[0] - pad) : loud[-1] + pad]


def pause_s(rng: random.Random) -> float:
    """A pause between two sentences: mostly short (0.1–0.6 s), sometimes long (up to 2 s)."""
    return rng.uniform(0.1, 0.6) if rng.random() < 0.6 else rng.uniform(0.6, 2.0)


def build_programme(split: str, voice: str, text_ids: list[str] | None = None, *, tag: str = "") -> Programme:
    """``voice`` reading the texts of ``split`` (or just ``text_ids``, in that order), cached."""
    texts = [(i, t) for i, s, t in load_texts() if (s == split if text_ids is None else i in text_ids)]
    if text_ids is not None:
        texts.sort(key=lambda it: text_ids.index(it[0]))
    key = hashlib.sha1(repr((split, voice, texts, SEED, VOICES[voice])).encode()).hexdigest()[:10]
    path = CACHE / f"{split}-{voice}{tag}-{key}.wav"
    if path.exists():
        return _load_cached(split, voice, path)
    rng = random.Random(f"{SEED}:{split}:{voice}{tag}")
    parts: list[np.ndarray] = []
    sentences: list[Sentence] = []
    t = 0.0
    for n, (text_id, text) in enumerate(texts):
        if n:
            parts.append(np.zeros(int(TEXT_PAUSE_S * SR), np.float32))
            t += TEXT_PAUSE_S
        for k, sentence in enumerate(sentences_of(text)):
            if k:
                gap = int(pause_s(rng) * SR)
                parts.append(np.zeros(gap, np.float32))
                t += gap / SR
            audio = speak(sentence, voice)
            parts.append(audio)
            sentences.append(Sentence(text_id, sentence, t, t + len(audio) / SR))
            t += len(audio) / SR
    data = np.concatenate([*parts, np.zeros(int(0.5 * SR), np.float32)])
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(data, -1, 1) * 32767).astype("<i2").tobytes())
    path.with_suffix(".tsv").write_text(
        "".join(f"{s.start:.3f}\t{s.end:.3f}\t{s.text_id}\t{s.text}\n" for s in sentences), encoding="utf-8"
    )
    tmp.rename(path)
    return _load_cached(split, voice, path)


def _load_cached(split: str, voice: str, path: Path) -> Programme:
    sentences = []
    for line in path.with_suffix(".tsv").read_text(encoding="utf-8").splitlines():
        start, end, text_id, text = line.split("\t", 3)
        sentences.append(Sentence(text_id, text, float(start), float(end)))
    with wave.open(str(path), "rb") as w:
        duration = w.getnframes() / w.getframerate()
    return Programme(split, voice, path, tuple(sentences), duration)


def build_split(split: str, voices: list[str] | None = None) -> list[Programme]:
    """One programme per voice for ``split`` (``tune`` or ``held-out``)."""
    return [build_programme(split, v) for v in (voices or list(VOICES))]


def build_mixed(split: str) -> Programme:
    """Every text of ``split`` once, the voices taking turns: the live (1x) benchmark's programme."""
    ids = [i for i, s, _ in load_texts() if s == split]
    voices = list(VOICES)
    parts = [build_programme(split, voices[n % len(voices)], [text_id], tag="-single") for n, text_id in enumerate(ids)]
    key = hashlib.sha1("".join(p.path.name for p in parts).encode()).hexdigest()[:10]
    path = CACHE / f"{split}-mixed-{key}.wav"
    if not path.exists():
        chunks, sentences, t = [], [], 0.0
        for p in parts:
            with wave.open(str(p.path), "rb") as w:
                audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            chunks += [audio, np.zeros(int(1.5 * SR), "<i2")]
            sentences += [Sentence(s.text_id, s.text, s.start + t, s.end + t) for s in p.sentences]
            t += (len(audio) + int(1.5 * SR)) / SR
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes(np.concatenate(chunks).tobytes())
        path.with_suffix(".tsv").write_text(
            "".join(f"{s.start:.3f}\t{s.end:.3f}\t{s.text_id}\t{s.text}\n" for s in sentences), encoding="utf-8"
        )
    return _load_cached(split, "mixed", path)
