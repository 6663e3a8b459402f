"""Benchmark of browser capture (issue 3). Prints Markdown tables.

    .venv/bin/python benchmarks/bench_browser.py [--paragraphs N] [--max-sessions N] [--load-paragraphs N]

Measured on generated speech (couchpotato/testing/corpus.txt in rotating espeak-ng/flite voices),
served from 127.0.0.1 with a page that plays it with ``<audio autoplay>``:

1. Accuracy: the same programme transcribed by direct capture (FFmpeg reads the WAV over HTTP)
   and by browser capture (Chromium plays the page; FFmpeg records its PulseAudio sink), through
   the same segmenter, model (tiny.en) and resequencer. Goal: browser within 1 WER point of direct.
2. Start-up: from creating the Capture (what ``couchpotato transcribe`` does right after loading
   the model) to the first PCM chunk, and to the first chunk with sound in it (the page playing).
3. Cost of one browser session while it captures live: CPU (cores, averaged over the run) and
   memory (sum of PSS, so pages shared between Chromium's processes count once) of its processes
   (Chromium's tree, FFmpeg, Xvfb); the ASR in this process is reported apart, since in a
   deployment it runs on ASR workers.
4. Load: N sessions capture N pages at once (capture only, ASR afterwards). A session keeps up in
   real time when its audio arrives whole: aligned against the source, at least 98% of its
   one-second windows with speech match the source (correlation ≥ 0.9), and its WER stays within
   2 points of a single session's. The largest N where every session keeps up is what 2 cores
   sustain.

The machine is shared: other work on it adds noise to CPU figures and to the load limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from couchpotato.asr import FasterWhisperEngine
from couchpotato.browser.process import session_processes
from couchpotato.capture import Capture, CaptureOptions
from couchpotato.decoder import PcmChunk
from couchpotato.pipeline import Pipeline, PipelineOptions
from couchpotato.records import TranscriptEvent
from couchpotato.testing import Programme, build_programme, serve_directory, wer
from couchpotato.urlguard import UrlGuard

GUARD = UrlGuard.from_allowlist("127.0.0.1/32")
SR = 16_000
LOUD_DBFS = -40.0
CLEAN_CORRELATION = 0.9
KEEPS_UP_CLEAN = 0.98
KEEPS_UP_WER_POINTS = 2.0


def rms_dbfs(x: np.ndarray) -> float:
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return -120.0 if r <= 0 else 20 * np.log10(r)


def load_pcm(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(SR), "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def page(folder: Path, name: str, media: str) -> None:
    (folder / name).write_text(
        f'<!doctype html><html><body><audio src="{media}" autoplay></audio></body></html>', encoding="utf-8"
    )


@dataclass
class Usage:
    """CPU and memory of a session's processes, sampled while it runs."""

    cpu_s: float = 0.0
    pss_mb: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    _last: dict[int, float] = field(default_factory=dict)

    def sample(self, procs: list[psutil.Process]) -> None:
        pss = rss = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total = times.user + times.system  # children are sampled themselves
                self.cpu_s += total - self._last.get(proc.pid, 0.0)
                self._last[proc.pid] = total
                mem = proc.memory_full_info()
                pss += getattr(mem, "pss", mem.rss)
                rss += mem.rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.pss_mb.append(pss / 2**20)
        self.rss_mb.append(rss / 2**20)


@dataclass
class BrowserRun:
    text: str = ""
    first_pcm_s: float = 0.0
    first_sound_s: float = 0.0
    wall_s: float = 0.0
    usage: Usage = field(default_factory=Usage)
    own_cpu_s: float = 0.0
    pcm: list[np.ndarray] = field(default_factory=list)


async def _watch_usage(cap: Capture, usage: Usage, stop: asyncio.Event) -> None:
    browser = cap.browser
    assert browser is not None and browser.display is not None
    xvfb = psutil.Process(browser.display.pid)
    while not stop.is_set():
        procs = await asyncio.to_thread(session_processes, browser.tag, browser.groups())
        await asyncio.to_thread(usage.sample, [*procs, xvfb])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def browser_capture(
    url: str, duration_s: float, engine: FasterWhisperEngine | None, *, measure: bool = True
) -> BrowserRun:
    """Capture ``url`` in the browser for ``duration_s``; transcribe live when ``engine`` is given."""
    run = BrowserRun()
    me = psutil.Process()
    cpu0 = sum(me.cpu_times()[:2])
    started = time.perf_counter()
    async with Capture(url, GUARD, CaptureOptions(mode="browser", duration_s=duration_s)) as cap:
        stop = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_usage(cap, run.usage, stop)) if measure else None

        async def timed(pcm: AsyncIterator[PcmChunk]) -> AsyncIterator[PcmChunk]:
            async for chunk in pcm:
                now = time.perf_counter() - started
                if not run.first_pcm_s:
                    run.first_pcm_s = now
                if not run.first_sound_s and rms_dbfs(chunk.samples) > LOUD_DBFS:
                    run.first_sound_s = now
                run.pcm.append(chunk.samples)
                yield chunk

        try:
            if engine is None:
                async for _ in timed(cap.pcm()):
                    pass
            else:
                pipeline = Pipeline(engine, PipelineOptions(asr_workers=1))
                texts = [
                    e.text
                    async for e in pipeline.events(timed(cap.pcm()), cap.info())
                    if isinstance(e, TranscriptEvent)
                ]
                run.text = " ".join(texts)
        finally:
            stop.set()
            if watcher is not None:
                await watcher
    run.wall_s = time.perf_counter() - started
    run.own_cpu_s = sum(me.cpu_times()[:2]) - cpu0
    return run


async def direct_capture(url: str, engine: FasterWhisperEngine) -> tuple[str, float]:
    started = time.perf_counter()
    first = 0.0
    pipeline = Pipeline(engine, PipelineOptions(asr_workers=1))
    texts = []
    async with Capture(url, GUARD, CaptureOptions(mode="direct")) as cap:

        async def timed(pcm: AsyncIterator[PcmChunk]) -> AsyncIterator[PcmChunk]:
            nonlocal first
            async for chunk in pcm:
                first = first or time.perf_counter() - started
                yield chunk

        async for e in pipeline.events(timed(cap.pcm()), cap.info()):
            if isinstance(e, TranscriptEvent):
                texts.append(e.text)
    return " ".join(texts), first


async def transcribe_pcm(samples: np.ndarray, engine: FasterWhisperEngine) -> str:
    async def chunks() -> AsyncIterator[PcmChunk]:
        for i in range(0, len(samples), 1600):
            yield PcmChunk(i, samples[i : i + 1600])

    pipeline = Pipeline(engine, PipelineOptions(asr_workers=1))
    return " ".join([e.text async for e in pipeline.events(chunks()) if isinstance(e, TranscriptEvent)])


def clean_fraction(source: np.ndarray, captured: np.ndarray) -> float:
    """Share of the source's one-second windows with speech that the capture reproduces.

    The capture is aligned on the source by cross-correlation; a window is clean when the aligned
    captured audio correlates with the source at CLEAN_CORRELATION or more. Audio lost or delayed
    by an underrun misaligns everything after it, so those windows fail.
    """
    n = 1 << int(np.ceil(np.log2(len(source) + len(captured))))
    xc = np.fft.irfft(np.fft.rfft(captured, n) * np.conj(np.fft.rfft(source, n)), n)
    offset = int(np.argmax(xc[: len(captured)]))
    windows = clean = 0
    for start in range(0, len(source) - SR, SR):
        src = source[start : start + SR]
        if rms_dbfs(src) < LOUD_DBFS:
            continue
        windows += 1
        cap = captured[offset + start : offset + start + SR]
        if len(cap) == SR and np.std(cap) > 0 and np.corrcoef(src, cap)[0, 1] >= CLEAN_CORRELATION:
            clean += 1
    return clean / windows if windows else 0.0


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paragraphs", type=int, default=4, help="corpus paragraphs in the accuracy programme")
    ap.add_argument("--load-paragraphs", type=int, default=2, help="corpus paragraphs each load session plays")
    ap.add_argument("--max-sessions", type=int, default=6, help="largest number of concurrent sessions tried")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    programme = build_programme(folder / "programme", args.paragraphs)
    load: Programme = build_programme(folder / "load", args.load_paragraphs)
    page(folder, "programme.html", "programme/programme.wav")
    page(folder, "load.html", "load/programme.wav")
    engine = FasterWhisperEngine("tiny.en", workers=1)
    out: list[str] = [
        f"# Browser capture benchmark ({time.strftime('%Y-%m-%d')}, {platform.node()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start)",
        "",
    ]
    with serve_directory(folder) as base:
        # 1-3: accuracy, start-up, cost of one session
        direct_text, direct_first = await direct_capture(f"{base}/programme/programme.wav", engine)
        run = await browser_capture(f"{base}/programme.html", programme.duration_s + 3.0, engine)
        wer_direct = 100 * wer(programme.text, direct_text)
        wer_browser = 100 * wer(programme.text, run.text)
        out += [
            f"## Accuracy and start-up ({programme.duration_s:.0f} s programme, {args.paragraphs} paragraphs, tiny.en)",
            "",
            table(
                ["capture", "WER %", "to first PCM (s)", "to first sound (s)"],
                [
                    ["direct (FFmpeg reads the WAV over HTTP)", f"{wer_direct:.1f}", f"{direct_first:.2f}", "—"],
                    [
                        "browser (Chromium plays the page)",
                        f"{wer_browser:.1f}",
                        f"{run.first_pcm_s:.2f}",
                        f"{run.first_sound_s:.2f}",
                    ],
                    ["difference (goal: within 1 point)", f"{wer_browser - wer_direct:+.1f}", "", ""],
                ],
            ),
            "",
            "## One browser session, capturing live",
            "",
            table(
                ["what", "value"],
                [
                    ["session processes CPU (Chromium + FFmpeg + Xvfb)", f"{run.usage.cpu_s / run.wall_s:.2f} cores"],
                    [
                        "session processes memory, PSS (peak / mean)",
                        f"{max(run.usage.pss_mb):.0f} / {statistics.mean(run.usage.pss_mb):.0f} MB",
                    ],
                    ["session processes memory, RSS sum (peak)", f"{max(run.usage.rss_mb):.0f} MB"],
                    ["this process (proxy, VAD, ASR tiny.en) CPU", f"{run.own_cpu_s / run.wall_s:.2f} cores"],
                    ["wall time for the run", f"{run.wall_s:.1f} s for {programme.duration_s + 3:.1f} s of media"],
                ],
            ),
            "",
        ]
        print("\n".join(out), flush=True)

        # 4: load
        source = load_pcm(load.path)
        rows = []
        reference_wer: float | None = None
        sustained = 0
        for n in range(1, args.max_sessions + 1):
            load_before = os.getloadavg()[0]
            runs = await asyncio.gather(
                *[browser_capture(f"{base}/load.html", load.duration_s + 3.0, None, measure=True) for _ in range(n)]
            )
            wers, cleans = [], []
            for r in runs:
                captured = np.concatenate(r.pcm)
                cleans.append(clean_fraction(source, captured))
                wers.append(100 * wer(load.text, await transcribe_pcm(captured, engine)))
            if reference_wer is None:
                reference_wer = max(wers)
            cpu = sum(r.usage.cpu_s / r.wall_s for r in runs)
            pss = sum(max(r.usage.pss_mb) for r in runs)
            keeps_up = min(cleans) >= KEEPS_UP_CLEAN and max(wers) <= reference_wer + KEEPS_UP_WER_POINTS
            sustained = n if keeps_up and sustained == n - 1 else sustained
            rows.append(
                [
                    str(n),
                    f"{100 * min(cleans):.0f}% / {100 * statistics.mean(cleans):.0f}%",
                    f"{max(wers):.1f} / {statistics.mean(wers):.1f}",
                    f"{cpu:.2f}",
                    f"{pss:.0f}",
                    f"{max(r.first_sound_s for r in runs):.1f}",
                    f"{load_before:.1f}",
                    "yes" if keeps_up else "no",
                ]
            )
            print(f"  {n} session(s): {rows[-1]}", file=sys.stderr, flush=True)
            if not keeps_up:
                break
    load_out = [
        f"## Concurrent browser sessions on {os.cpu_count()} cores "
        f"(each plays {load.duration_s:.0f} s, {args.load_paragraphs} paragraphs; capture live, ASR afterwards)",
        "",
        table(
            [
                "sessions",
                "clean seconds (worst / mean)",
                "WER % (worst / mean)",
                "CPU (cores, all sessions)",
                "PSS (MB, all sessions)",
                "first sound (s, worst)",
                "load avg before",
                "all keep up",
            ],
            rows,
        ),
        "",
        f"Sessions sustained in real time: {sustained} (largest N where every session keeps up: "
        f"≥ {100 * KEEPS_UP_CLEAN:.0f}% clean seconds and WER within {KEEPS_UP_WER_POINTS:.0f} points of one session).",
    ]
    print("\n".join(load_out))


if __name__ == "__main__":
    asyncio.run(main())
