"""Word latency of live transcription, with and without interim text. Prints a Markdown table.

    .venv/bin/python benchmarks/bench_latency.py [--profiles balanced,low,efficient] [--partials-only]
                                                 [--alone] [--streams N]

The held-out texts of the evaluation corpus (benchmarks/evalset, one voice each in turn, about
4 minutes) are streamed at 1x through ``couchpotato transcribe --realtime --format jsonl``, in
each latency profile, with ``--partials`` and without, all at once (each figure is then taken
with the other live streams on the same 2 cores), or with ``--alone`` one after another, each
alone on the machine. For each:

- first appearance of a word: ``emitted_at − (media_epoch + word end)`` of the first partial that
  shows it (same spelling, within 0.5 s), or of its final segment if no partial did; a word a
  draft misheard first appears with its final text;
- first text at its place: the same for the first partial with any word within 0.5 s of it (what
  a viewer sees move on screen, right or wrong);
- final latency: the same for the ``segment`` event that commits it;
- churn: of the words a partial showed, the share its final text does not hold (changed or gone);
- CPU held: the process's CPU time over its wall time; WER after Whisper's normaliser.

With ``--streams N`` it then runs N copies of the default profile with partials at once and reports
whether they all kept up (final p95 under 2× the single-stream figure, every stream finished).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalset

from couchpotato.testing.wer import wer

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).with_name("couchpotato")
_KEY = re.compile(r"[^\w']+")
SAME_WORD_S = 0.5


@dataclass
class Stream:
    name: str
    argv: list[str]
    out: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    cores: float = 0.0
    returncode: int = 0


def key(word: str) -> str:
    return _KEY.sub("", word.lower())


def start(streams: list[Stream]) -> None:
    for s in streams:
        s.started = time.perf_counter()
        s.proc = subprocess.Popen(s.argv, stdout=s.out.open("wb"), stderr=subprocess.DEVNULL, cwd=ROOT)


def wait(streams: list[Stream]) -> None:
    for s in streams:
        assert s.proc is not None
        _, status, usage = os.wait4(s.proc.pid, 0)
        s.proc.returncode = s.returncode = os.waitstatus_to_exitcode(status)
        s.cores = (usage.ru_utime + usage.ru_stime) / (time.perf_counter() - s.started)


def figures(events: list[dict], reference: str) -> dict[str, float]:  # type: ignore[type-arg]
    epoch = float(events[0]["media_epoch"])
    partials: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    for e in events:
        if e["type"] == "partial":
            partials.setdefault(int(e["seq"]), []).append(e)
    first, placed, final, shown, changed = [], [], [], 0, 0
    for e in events:
        if e["type"] != "segment":
            continue
        seq, at = int(e["seq"]), float(e["emitted_at"])
        finals = [(key(w["word"]), (w["start"] + w["end"]) / 2) for w in e["words"]]
        for w in e["words"]:
            k, c = key(w["word"]), (w["start"] + w["end"]) / 2
            seen = [
                float(p["emitted_at"])
                for p in partials.get(seq, [])
                if any(key(x["word"]) == k and abs((x["start"] + x["end"]) / 2 - c) < SAME_WORD_S for x in p["words"])
            ]
            near = [
                float(p["emitted_at"])
                for p in partials.get(seq, [])
                if any(abs((x["start"] + x["end"]) / 2 - c) < SAME_WORD_S for x in p["words"])
            ]
            final.append(at - (epoch + w["end"]))
            first.append(min([*seen, at]) - (epoch + w["end"]))
            placed.append(min([*near, at]) - (epoch + w["end"]))
        for p in partials.get(seq, []):
            for x in p["words"]:
                shown += 1
                c = (x["start"] + x["end"]) / 2
                if not any(k == key(x["word"]) and abs(fc - c) < SAME_WORD_S for k, fc in finals):
                    changed += 1
    text = " ".join(e["text"] for e in events if e["type"] == "segment")
    return {
        "first_p50": float(np.percentile(first, 50)),
        "first_p95": float(np.percentile(first, 95)),
        "placed_p50": float(np.percentile(placed, 50)),
        "placed_p95": float(np.percentile(placed, 95)),
        "final_p50": float(np.percentile(final, 50)),
        "final_p95": float(np.percentile(final, 95)),
        "churn": changed / shown if shown else float("nan"),
        "partials": float(sum(len(v) for v in partials.values())),
        "wer": wer(reference, text),
    }


def argv(path: Path, profile: str, partials: bool) -> list[str]:
    extra = ["--partials"] if partials else []
    return [str(CLI), "transcribe", str(path), "--realtime", "--format", "jsonl", "-q", "--latency", profile, *extra]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", default="balanced,low,efficient")
    ap.add_argument("--partials-only", action="store_true", help="only the streams with partials (fewer at once)")
    ap.add_argument("--streams", type=int, default=0, help="then N default-profile streams with partials at once")
    ap.add_argument("--alone", action="store_true", help="one stream at a time, each alone on the machine")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "latency.md")
    args = ap.parse_args()
    prog = evalset.build_mixed("held-out")
    tmp = Path("/tmp/couchpotato-bench")
    tmp.mkdir(parents=True, exist_ok=True)
    streams = [
        Stream(f"{p}, partials {'on' if on else 'off'}", argv(prog.path, p, on), tmp / f"lat-{p}-{on}.jsonl")
        for p in args.profiles.split(",")
        for on in ((True,) if args.partials_only else (True, False))
    ]
    for batch in [[s] for s in streams] if args.alone else [streams]:
        start(batch)
        wait(batch)
    at_once = "one stream at a time" if args.alone else f"{len(streams)} streams at once"
    lines = [
        f"Programme: the held-out texts of benchmarks/evalset, one voice each in turn ({prog.duration_s:.0f} s), "
        f"streamed at 1x; {at_once} on {os.cpu_count()} cores; tiny.en int8.",
        "",
        "| stream | first appearance p50 / p95 s | first text at its place p50 / p95 s | final p50 / p95 s "
        "| churn % | partials | CPU cores | WER % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    single: dict[str, float] = {}
    for s in streams:
        if s.returncode != 0:
            lines.append(f"| {s.name} | failed (exit {s.returncode}) | | | | | | |")
            continue
        events = [json.loads(x) for x in s.out.read_text().splitlines() if x.strip()]
        f = figures(events, prog.text)
        single[s.name] = f["final_p95"]
        churn = "–" if f["churn"] != f["churn"] else f"{100 * f['churn']:.1f}"
        lines.append(
            f"| {s.name} | {f['first_p50']:.2f} / {f['first_p95']:.2f} | {f['placed_p50']:.2f} / {f['placed_p95']:.2f} "
            f"| {f['final_p50']:.2f} / {f['final_p95']:.2f} | "
            f"{churn} | {f['partials']:.0f} | {s.cores:.2f} | {100 * f['wer']:.2f} |"
        )
    if args.streams:
        profile = args.profiles.split(",")[0]
        many = [
            Stream(f"{profile} #{i}", argv(prog.path, profile, True), tmp / f"lat-many-{i}.jsonl")
            for i in range(args.streams)
        ]
        start(many)
        wait(many)
        p95s = []
        for s in many:
            events = [json.loads(x) for x in s.out.read_text().splitlines() if x.strip()] if s.returncode == 0 else []
            p95s.append(figures(events, prog.text)["final_p95"] if events else float("inf"))
        lines += [
            "",
            f"{args.streams} streams of `{profile}` with partials at once: final p95 per stream "
            + ", ".join(f"{p:.2f}" for p in p95s)
            + f" s; CPU {sum(s.cores for s in many):.2f} cores in all.",
        ]
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Latency benchmark ({time.strftime('%Y-%m-%d')})\n\n{table}\n")


if __name__ == "__main__":
    main()
