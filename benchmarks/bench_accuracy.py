"""Accuracy of the live pipeline against whole-file transcription, on speech it was never tuned on.

    .venv/bin/python benchmarks/bench_accuracy.py [--splits tune,held-out] [--skip-realtime]

The corpus is ``benchmarks/evalset`` (evalset.py): public-domain texts × six TTS voices, sentences
joined by pauses of 0.1–2 s; texts marked ``held-out`` were never used to tune the segmenter or the
resequencer. Every configuration transcribes every voice's programme of a split:

- whole file: one faster-whisper ``model.transcribe`` of the file (tiny.en int8, greedy with
  Whisper's fallbacks, ``vad_filter=True``): the reference. It is checked to cover the whole
  audio: a sentence none of whose time holds a decoded word is reported;
- naive 5 s chunks: fixed 5 s pieces transcribed independently (the baseline to beat);
- ``couchpotato transcribe FILE --latency balanced|low`` (the CLI, jsonl), end to end.

WER is scored after Whisper's English text normaliser, pooled over the split (errors / reference
words) and per voice. The word-loss audit (couchpotato/testing/audit.py) counts runs of 3 or more
deleted reference words, and words doubled at a cut, and prints the worst cases with the nearest
cut. With realtime on, the held-out texts (one voice each, in turn) are also streamed at 1x through
the CLI in both profiles at once: word latency and CPU held per stream.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalset

from couchpotato.testing.audit import Audit, Token, audit, hypothesis_tokens
from couchpotato.testing.wer import normalise

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("couchpotato")
SR = 16_000
PROFILES = ("balanced", "low")


@dataclass
class Run:
    """One configuration on one programme."""

    text: str
    tokens: list[Token]
    segments: int = 0
    uncovered: list[str] = field(default_factory=list)


@dataclass
class Row:
    name: str
    runs: dict[tuple[str, str], Run] = field(default_factory=dict)  # (split, voice) -> run
    programmes: dict[tuple[str, str], evalset.Programme] = field(default_factory=dict)


def _model():  # type: ignore[no-untyped-def]
    from couchpotato.asr import FasterWhisperEngine

    return FasterWhisperEngine(workers=1, short_window=False)


def whole_file(prog: evalset.Programme, engine) -> Run:  # type: ignore[no-untyped-def]
    from faster_whisper import decode_audio

    audio = decode_audio(str(prog.path), sampling_rate=SR)
    segments, _ = engine._model.transcribe(audio, language="en", beam_size=1, vad_filter=True, word_timestamps=True)
    words = [(float(w.start), float(w.end), str(w.word)) for s in segments for w in s.words or ()]
    uncovered = [
        s.text for s in prog.sentences if not any(s.start - 0.3 <= (a + b) / 2 <= s.end + 0.3 for a, b, _ in words)
    ]
    return Run("".join(w for _, _, w in words), hypothesis_tokens([(0, words)]), 1, uncovered)


def chunks5(prog: evalset.Programme, engine) -> Run:  # type: ignore[no-untyped-def]
    from faster_whisper import decode_audio

    audio = decode_audio(str(prog.path), sampling_rate=SR)
    step = 5 * SR
    segs = []
    for n, i in enumerate(range(0, len(audio), step)):
        segments, _ = engine._model.transcribe(
            audio[i : i + step], language="en", beam_size=1, word_timestamps=True, condition_on_previous_text=False
        )
        words = [w for s in segments for w in s.words or ()]
        segs.append((n, [(float(w.start) + i / SR, float(w.end) + i / SR, str(w.word)) for w in words]))
    return Run(" ".join("".join(w for _, _, w in ws) for _, ws in segs), hypothesis_tokens(segs), len(segs))


def pipeline_argv(path: Path, profile: str, *extra: str) -> list[str]:
    return [str(CLI), "transcribe", str(path), "--format", "jsonl", "--quiet", "--latency", profile, *extra]


def run_of_events(events: list[dict]) -> Run:  # type: ignore[type-arg]
    segs = [
        (int(e["seq"]), [(float(w["start"]), float(w["end"]), str(w["word"])) for w in e["words"]])
        for e in events
        if e["type"] == "segment"
    ]
    text = " ".join(str(e["text"]) for e in events if e["type"] == "segment")
    return Run(text, hypothesis_tokens(segs), len(segs))


def pipeline(prog: evalset.Programme, profile: str, code: Path | None = None) -> Run:
    argv = pipeline_argv(prog.path, profile)
    if code:  # PYTHONPATH would not do: the editable install's finder comes first (see checkout_cli.py)
        argv = [sys.executable, str(ROOT / "benchmarks" / "checkout_cli.py"), str(code), *argv[1:]]
    proc = subprocess.run(argv, capture_output=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"couchpotato transcribe {prog.path} failed: {proc.stderr.decode()[-400:]}")
    return run_of_events([json.loads(x) for x in proc.stdout.decode().splitlines() if x.strip()])


def pooled_wer(pairs: list[tuple[str, str]]) -> float:
    import jiwer

    refs = [normalise(r) for r, _ in pairs]
    hyps = [normalise(h) for _, h in pairs]
    return float(jiwer.wer(refs, hyps))


def realtime(prog: evalset.Programme) -> dict[str, dict[str, float]]:
    """Both profiles streamed at 1x at once: WER, latency percentiles, CPU cores held, per profile."""
    procs = {}
    for profile in PROFILES:
        out = open(Path(f"/tmp/bench-acc-rt-{profile}.jsonl"), "wb")  # noqa: SIM115 - closed below
        procs[profile] = (
            subprocess.Popen(pipeline_argv(prog.path, profile, "--realtime"), stdout=out, cwd=ROOT),
            out,
            time.perf_counter(),
        )
    results = {}
    for profile, (proc, out, started) in procs.items():
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.close()
        if proc.returncode != 0:
            raise SystemExit(f"realtime {profile} failed")
        events = [json.loads(x) for x in Path(out.name).read_text().splitlines() if x.strip()]
        epoch = float(events[0]["media_epoch"])
        lat = [
            float(e["emitted_at"]) - (epoch + float(w["end"]))
            for e in events
            if e["type"] == "segment"
            for w in e["words"]
        ]
        run = run_of_events(events)
        results[profile] = {
            "wer": pooled_wer([(prog.text, run.text)]),
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "cores": (usage.ru_utime + usage.ru_stime) / wall,
        }
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", default="tune,held-out")
    ap.add_argument("--configs", default="whole,chunks5,balanced,low,efficient")
    ap.add_argument("--voices", default="", help="comma-separated voices (default: all)")
    ap.add_argument("--skip-realtime", action="store_true")
    ap.add_argument("--code", type=Path, help="run the pipeline rows from this checkout (a before/after comparison)")
    ap.add_argument("--worst", type=int, default=10, help="worst audit cases to print per configuration")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy.md")
    args = ap.parse_args()
    splits = [s for s in args.splits.split(",") if s]
    configs = [c for c in args.configs.split(",") if c]
    voices = [v for v in args.voices.split(",") if v] or list(evalset.VOICES)
    names = {
        "whole": "whole file (reference, vad_filter)",
        "chunks5": "naive fixed 5 s chunks",
        "balanced": "pipeline --latency balanced",
        "low": "pipeline --latency low",
        "efficient": "pipeline --latency efficient",
    }
    engine = _model() if {"whole", "chunks5"} & set(configs) else None
    rows = {c: Row(names[c]) for c in configs}
    for split in splits:
        for prog in evalset.build_split(split, voices):
            for c in configs:
                t0 = time.perf_counter()
                if c == "whole":
                    run = whole_file(prog, engine)
                elif c == "chunks5":
                    run = chunks5(prog, engine)
                else:
                    run = pipeline(prog, c, args.code)
                rows[c].runs[(split, prog.voice)] = run
                rows[c].programmes[(split, prog.voice)] = prog
                print(f"  {split} {prog.voice} {c}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    lines = [
        f"Corpus: benchmarks/evalset ({', '.join(splits)}), {len(voices)} voices; tiny.en int8 on "
        f"{os.cpu_count()} CPU cores ({platform.machine()}); WER % after Whisper's English normaliser, pooled.",
        "",
    ]
    for split in splits:
        progs = [p for (s, _), p in next(iter(rows.values())).programmes.items() if s == split]
        words = sum(len(p.text.split()) for p in progs)
        minutes = sum(p.duration_s for p in progs) / 60
        lines += [
            f"### {split} split ({words} words, {minutes:.1f} min of audio)",
            "",
            "| configuration | WER % | " + " | ".join(voices) + " | lost runs (words) | doubled at a cut |",
            "|---|---|" + "---|" * len(voices) + "---|---|",
        ]
        for row in rows.values():
            pairs = {v: (row.programmes[(split, v)].text, row.runs[(split, v)].text) for v in voices}
            found = Audit()
            for v in voices:
                run = row.runs[(split, v)]
                found.extend(audit(pairs[v][0], run.tokens, voice=v))
            per_voice = " | ".join(f"{100 * pooled_wer([pairs[v]]):.2f}" for v in voices)
            lines.append(
                f"| {row.name} | {100 * pooled_wer(list(pairs.values())):.2f} | {per_voice} | "
                f"{len(found.lost)} ({found.lost_words}) | {len(found.doubled)} |"
            )
        lines.append("")
        whole = rows.get("whole")
        if whole:
            missing = [(v, s) for v in voices for s in whole.runs[(split, v)].uncovered]
            lines.append(
                f"Whole-file coverage: {sum(len(p.sentences) for p in progs) - len(missing)} of "
                f"{sum(len(p.sentences) for p in progs)} sentences hold decoded words"
                + ("." if not missing else "; not covered: " + "; ".join(f"{v}: {s[:60]}" for v, s in missing))
            )
            lines.append("")
        for c, row in rows.items():
            found = Audit()
            for v in voices:
                found.extend(audit(row.programmes[(split, v)].text, row.runs[(split, v)].tokens, voice=v))
            if c in ("whole", "chunks5") or not (found.lost or found.doubled):
                continue
            lines.append(f"Worst cases, {row.name}, {split}:")
            for case in sorted(found.lost, key=lambda r: -len(r.words))[: args.worst]:
                lines.append(f"- {case.describe()}")
            for d in found.doubled[: args.worst]:
                lines.append(f"- {d.describe()}")
            lines.append("")

    if not args.skip_realtime and "held-out" in splits:
        prog = evalset.build_mixed("held-out")
        rt = realtime(prog)
        lines += [
            f"### live, --realtime (held-out texts, one voice each in turn, {prog.duration_s:.0f} s; both profiles "
            "streamed at once)",
            "",
            "| profile | WER % | word latency p50 / p95 s | CPU cores held |",
            "|---|---|---|---|",
        ]
        for profile, r in rt.items():
            lines.append(f"| {profile} | {100 * r['wer']:.2f} | {r['p50']:.2f} / {r['p95']:.2f} | {r['cores']:.2f} |")
        lines.append("")

    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Accuracy benchmark ({time.strftime('%Y-%m-%d')})\n\n{table}\n")


if __name__ == "__main__":
    main()
