"""Benchmark of the live transcription core (issue 2). Prints a Markdown table.

    .venv/bin/python benchmarks/bench_core.py [--paragraphs N] [--runs R] [--skip-realtime]

On the generated corpus (couchpotato/testing/corpus.txt: 12 paragraphs, six espeak-ng/flite
voices, 1.2 s pauses, about 3.6 minutes), every configuration runs as its own process so wall
time, CPU time and peak memory are measured the same way:

- whole file: faster-whisper on the whole file, the accuracy reference;
- naive 5 s chunks: fixed chunks transcribed independently, the baseline to beat;
- pipeline (fast): ``couchpotato transcribe FILE`` end to end, as fast as the machine allows;
- pipeline (--realtime): the file read at 1x like a live source: word latency
  (emitted_at − (media_epoch + word end)) and the CPU one live stream holds;
- both pipeline rows once per latency profile (``--latency balanced|low``).

Decoding is deterministic (greedy, then a wider beam; Whisper's temperature sampling only as a last
resort, see couchpotato/asr/whisper.py), so the WER of a configuration repeats from run to run;
``--runs`` repeats the fast configurations and reports the mean and range (of WER, time and CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from couchpotato.testing import build_programme, wer

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("couchpotato")


@dataclass
class Measure:
    name: str
    wers: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def run_process(argv: list[str]) -> tuple[str, float, float]:
    """stdout, wall seconds, CPU seconds of the process and its descendants."""
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    after = os.times()  # the child was reaped: its usage (and its reaped children's) is in ours now
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return proc.stdout.decode(), wall, cpu


def measure_rss(argv: list[str]) -> float:
    """Peak resident memory (MB) of one more run of ``argv``."""
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, _, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    return usage.ru_maxrss / 1024


def pipeline_argv(audio: Path, *extra: str) -> list[str]:
    return [str(CLI), "transcribe", str(audio), "--format", "jsonl", "--quiet", *extra]


def events_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def text_of(events: list[dict[str, object]]) -> str:
    return " ".join(str(e["text"]) for e in events if e["type"] == "segment")


def word_latencies(events: list[dict[str, object]]) -> list[float]:
    epoch = float(events[0]["media_epoch"])  # type: ignore[arg-type]
    out = []
    for e in events:
        if e["type"] == "segment":
            for w in e["words"]:  # type: ignore[attr-defined]
                out.append(float(e["emitted_at"]) - (epoch + float(w["end"])))  # type: ignore[arg-type, index]
    return out


def fmt(values: list[float], digits: int = 2, scale: float = 1.0) -> str:
    if not values:
        return "–"
    vs = [v * scale for v in values]
    mean = statistics.fmean(vs)
    if len(vs) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({min(vs):.{digits}f}–{max(vs):.{digits}f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paragraphs", type=int, default=None, help="corpus paragraphs (default: all 12)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions of the fast configurations")
    ap.add_argument("--skip-realtime", action="store_true", help="skip the 1x run (it takes the programme's length)")
    ap.add_argument(
        "--profiles",
        type=lambda v: [p for p in v.split(",") if p],
        default=["balanced", "low"],
        help="latency profiles of the pipeline rows (default: balanced,low)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core.md")
    args = ap.parse_args()

    folder = Path(tempfile.gettempdir()) / "couchpotato-bench" / f"programme-{args.paragraphs or 'all'}"
    prog = build_programme(folder, args.paragraphs)
    dur = prog.duration_s
    rows: list[Measure] = []

    fast = [
        ("whole file (reference)", [sys.executable, "benchmarks/baselines.py", "whole", str(prog.path)]),
        ("naive fixed 5 s chunks", [sys.executable, "benchmarks/baselines.py", "chunks5", str(prog.path)]),
    ]
    fast += [
        (f"pipeline --latency {p}, recorded file", pipeline_argv(prog.path, "--latency", p)) for p in args.profiles
    ]
    for name, argv in fast:
        m = Measure(name)
        for _ in range(args.runs):
            out, wall, cpu = run_process(argv)
            text = json.loads(out)["text"] if "baselines" in argv[1] else text_of(events_of(out))
            m.wers.append(wer(prog.text, text))
            m.walls.append(wall)
            m.cpus.append(cpu)
        m.rss_mb.append(measure_rss(argv))
        rows.append(m)
        print(f"  measured {name}", file=sys.stderr, flush=True)

    for profile in [] if args.skip_realtime else args.profiles:
        m = Measure(f"pipeline --latency {profile}, --realtime (live)")
        argv = pipeline_argv(prog.path, "--realtime", "--latency", profile)
        out, wall, cpu = run_process(argv)
        events = events_of(out)
        m.wers.append(wer(prog.text, text_of(events)))
        m.walls.append(wall)
        m.cpus.append(cpu)
        m.latencies = word_latencies(events)
        rows.append(m)
        print(f"  measured realtime, {profile}", file=sys.stderr, flush=True)

    lines = [
        f"Corpus: {len(prog.text.split())} words, {dur:.0f} s, {args.paragraphs or 12} paragraphs, 6 voices; "
        f"tiny.en int8 on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}); "
        f"{args.runs} runs of the fast rows (mean, range).",
        "",
        "| configuration | WER % | real-time factor | CPU cores held | peak RSS MB | word latency p50 / p95 s |",
        "|---|---|---|---|---|---|",
    ]
    for m in rows:
        rtf = [w / dur for w in m.walls]
        cores = [c / w for c, w in zip(m.cpus, m.walls, strict=True)]
        lat = f"{np.percentile(m.latencies, 50):.2f} / {np.percentile(m.latencies, 95):.2f}" if m.latencies else "–"
        rtf_cell = "1x (live)" if m.latencies else fmt(rtf, 3)
        lines.append(
            f"| {m.name} | {fmt(m.wers, 2, 100)} | {rtf_cell} | {fmt(cores, 2)} | {fmt(m.rss_mb, 0)} | {lat} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Core benchmark ({time.strftime('%Y-%m-%d')})\n\n{table}\n")


if __name__ == "__main__":
    main()
