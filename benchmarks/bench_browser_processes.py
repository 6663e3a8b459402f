"""Up to how many pages, started in the same instant from separate processes, hold 1x (issue 15).

    .venv/bin/python benchmarks/bench_browser_processes.py [--min-pages N] [--max-pages N] [--seconds S]

For N = 1, 2, … up to ``--max-pages``: N ``couchpotato transcribe PAGE --mode browser --format
jsonl`` processes are started at once (as N users would), each on its own page that starts playing
its own speech (a corpus paragraph, its own voice, about ``--seconds`` long) from script 1 s after
load. Each process has its own Chromium, Xvfb, sink and tiny.en model on the same 2 cores. Per page:

- WER against its own text, and the other pages' distinctive words it heard (a leak);
- lag: for each segment, how long after its audio was heard its text was printed
  (``emitted_at - (media_epoch + end)``); p95 and the last segment's;
- the machine's busy CPU over the run, in cores (everything on it: other users' work included).

N pages hold 1x when every page exits 0 with no leak and its lag stays bounded (p95 under 10 s, the
last segment's under 10 s: transcription keeps up with the speech rather than falling further
behind). WER is shown per page to see lost or garbled audio (the voices differ, so pages are not
compared with each other). The machine is shared: other work on it adds noise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from couchpotato.testing import corpus_paragraphs, normalise, serve_directory, synthesize, wer
from couchpotato.testing.media import media_duration

CLI = Path(sys.executable).with_name("couchpotato")
VOICES = ("espeak:en-us", "flite:slt", "flite:rms", "flite:awb", "flite:kal", "espeak:en-gb")
LAG_BOUND_S = 10.0
PAGE = """<!doctype html><html><body><h1>{i}</h1><script>
window.addEventListener('load', () => setTimeout(() => new Audio('speech_{i}.wav').play(), 1000));
</script></body></html>"""


@dataclass
class PageRun:
    returncode: int
    text: str
    lags: list[float] = field(default_factory=list)
    stderr: str = ""


def _words_up_to(text: str, seconds: float) -> str:
    """About ``seconds`` of speech from ``text`` (2.6 words a second)."""
    words = text.split()
    return " ".join(words[: max(10, int(seconds * 2.6))])


def run_pages(base: str, n: int, duration_s: float) -> tuple[dict[int, PageRun], float, float]:
    env = {**os.environ, "COUCHPOTATO_URL_ALLOWLIST": "127.0.0.1/32"}
    before = psutil.cpu_times()
    started = time.monotonic()
    procs = {
        i: subprocess.Popen(
            [
                str(CLI),
                "transcribe",
                f"{base}/page_{i}.html",
                "--mode",
                "browser",
                "--format",
                "jsonl",
                "--duration",
                f"{duration_s:.1f}",
                "--asr-workers",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    }
    runs: dict[int, PageRun] = {}
    for i, proc in procs.items():
        out, err = proc.communicate(timeout=duration_s + 180)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        epoch = next((e["media_epoch"] for e in events if e["type"] == "session"), None)
        segments = [e for e in events if e["type"] == "segment"]
        lags = [e["emitted_at"] - (epoch + e["end"]) for e in segments] if epoch is not None else []
        runs[i] = PageRun(proc.returncode, " ".join(e["text"] for e in segments), lags, err)
    wall = time.monotonic() - started
    after = psutil.cpu_times()
    busy = (after.user + after.system + after.nice) - (before.user + before.system + before.nice)
    return runs, wall, busy / wall


def distinct(text: str, others: list[str]) -> set[str]:
    theirs = {w for o in others for w in normalise(o).split()}
    return {w for w in normalise(text).split() if len(w) >= 5} - theirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-pages", type=int, default=1)
    ap.add_argument("--max-pages", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30.0, help="speech per page (the issue's clips: 29-37 s)")
    args = ap.parse_args()
    if not CLI.exists():
        sys.exit(f"{CLI} is not installed (make install)")
    paragraphs = corpus_paragraphs()
    texts = [_words_up_to(re.sub(r"\s+", " ", paragraphs[i % len(paragraphs)]), args.seconds)
             for i in range(args.max_pages)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        folder = Path(tmp)
        lengths = []
        for i, text in enumerate(texts):
            lengths.append(media_duration(synthesize(text, folder / f"speech_{i}.wav", VOICES[i % len(VOICES)])))
            (folder / f"page_{i}.html").write_text(PAGE.format(i=i), encoding="utf-8")
        duration = max(lengths) + 5.0
        print(f"# Pages started at once from separate processes ({platform.node()}, {os.cpu_count()} cores)\n")
        print(f"Each page: {statistics.mean(lengths):.0f} s of speech (corpus paragraph, own voice), "
              f"`--duration {duration:.0f}`; load average before: {os.getloadavg()[0]:.2f}\n")  # fmt: skip
        print(
            "| pages | exit 0 | WER % per page | leaks | lag p95 / last (s), worst page "
            "| machine CPU busy (cores) | holds 1x |"
        )
        print("|---|---|---|---|---|---|---|")
        with serve_directory(folder) as base:
            for n in range(args.min_pages, args.max_pages + 1):
                runs, _wall, cores = run_pages(base, n, duration)
                wers = {i: 100 * wer(texts[i], r.text) for i, r in runs.items()}
                leaks = sum(
                    len(set(normalise(r.text).split()) & distinct(texts[j], [texts[k] for k in runs if k != j]))
                    for i, r in runs.items()
                    for j in runs
                    if j != i
                )
                p95 = max((sorted(r.lags)[int(0.95 * (len(r.lags) - 1))] for r in runs.values() if r.lags), default=0.0)
                last = max((r.lags[-1] for r in runs.values() if r.lags), default=0.0)
                ok_exit = all(r.returncode == 0 for r in runs.values())
                holds = ok_exit and not leaks and p95 < LAG_BOUND_S and last < LAG_BOUND_S
                print(
                    f"| {n} | {sum(r.returncode == 0 for r in runs.values())}/{n} | "
                    f"{' / '.join(f'{wers[i]:.1f}' for i in sorted(wers))} | {leaks} | {p95:.1f} / {last:.1f} | "
                    f"{cores:.2f} | {'yes' if holds else 'no'} |",
                    flush=True,
                )
                for i, r in runs.items():
                    if r.returncode != 0:
                        print(f"<!-- page {i}: {r.stderr.strip().splitlines()[-1:]} -->")


if __name__ == "__main__":
    main()
