"""Time each stage of a browser capture's start, with Chromium's own logging (issue 15).

    .venv/bin/python benchmarks/probe_browser_start.py [--runs N] [--fresh-pulse] [--cold-fonts]
                                                       [--chromium-log] [--page autoplay|blank]

Each run starts one BrowserSession on a page that plays speech and prints, in seconds from the
session's start: Xvfb up, PulseAudio answering (``--fresh-pulse``: a new private daemon per run, as
on a machine's first capture), the sink loaded, FFmpeg attached to its monitor, Chromium spawned,
Chromium's first stderr line, its first renderer process, its first PulseAudio stream, the first
PCM, the first audible second, and the first frame of the display that is not black (x11grab).
``--cold-fonts`` gives Chromium an empty fontconfig cache (as a machine whose font cache is not
built yet); ``--chromium-log`` passes ``--enable-logging=stderr --v=0`` and prints the lines
Chromium wrote before its first renderer, with their times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil

from couchpotato.browser import BrowserOptions, BrowserSession
from couchpotato.egress import EgressProxy
from couchpotato.testing import serve_directory, synthesize
from couchpotato.urlguard import UrlGuard

LOUD_DBFS = -40.0


def _renderers(pid: int | None) -> int:
    if not pid:
        return 0
    try:
        return sum("--type=renderer" in c.cmdline() for c in psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return 0


def _frame_mean(display: str) -> float | None:
    """Mean luma of one frame of ``display`` (0: black), None if it cannot be grabbed."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "x11grab", "-video_size", "320x180", "-i", display, "-frames:v", "1",
         "-pix_fmt", "gray", "-f", "rawvideo", "-"],
        capture_output=True, timeout=10, check=False, env={**os.environ, "DISPLAY": display},
    )  # fmt: skip
    return float(np.frombuffer(out.stdout, dtype=np.uint8).mean()) if out.stdout else None


async def one_run(url: str, options: BrowserOptions, *, chromium_log: bool, timeout_s: float) -> dict[str, float]:
    marks: dict[str, float] = {}
    t0 = time.monotonic()

    def mark(name: str) -> None:
        marks.setdefault(name, round(time.monotonic() - t0, 2))

    if chromium_log:
        options = replace(options, chromium_args=("--enable-logging=stderr", "--v=0"))
    try:
        async with (
            EgressProxy(UrlGuard.from_allowlist("127.0.0.1/32")) as proxy,
            BrowserSession(url, proxy_url=proxy.url, options=options) as s,
        ):
            mark("session entered (Xvfb, pulse, sink, recorder, chromium spawned)")
            assert s.chromium is not None and s.display is not None and s.sink is not None
            pcm = s.pcm()
            first_line_at: float | None = None
            lines_before_renderer: list[str] = []
            seen_lines = 0

            async def read_pcm() -> None:
                async for chunk in pcm:
                    mark("first PCM")
                    x = chunk.samples.astype(np.float64)
                    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
                    if rms > 0 and 20 * np.log10(rms) > LOUD_DBFS:
                        mark("first audible PCM")
                        return

            async def watch_paint(display: str) -> None:
                while True:  # a frame grab takes a while: its own loop, so the others poll finely
                    mean = await asyncio.to_thread(_frame_mean, display)
                    if mean is not None and mean > 1.0:
                        mark("painted (a frame not black)")
                        return

            reader = asyncio.ensure_future(read_pcm())
            painter = asyncio.ensure_future(watch_paint(s.display.name))
            deadline = time.monotonic() + timeout_s
            try:
                wanted = {"first audible PCM", "painted (a frame not black)"}
                while time.monotonic() < deadline and not wanted <= marks.keys():
                    lines = list(s.chromium.stderr)
                    if len(lines) > seen_lines:
                        if first_line_at is None:
                            first_line_at = time.monotonic()
                            mark(f"chromium first stderr line: {lines[0][:70]!r}")
                        if "renderer" not in marks:
                            lines_before_renderer += [f"{time.monotonic() - t0:6.2f} {ln}" for ln in lines[seen_lines:]]
                        seen_lines = len(lines)
                    if _renderers(s.chromium.pid):
                        mark("renderer")
                    streams = await s.sink.streams()
                    if any(st["ours"] for st in streams):
                        mark("chromium stream on the sink")
                    await asyncio.sleep(0.05)
            finally:
                for task in (reader, painter):
                    task.cancel()
                await asyncio.gather(reader, painter, return_exceptions=True)
                await pcm.aclose()
            if chromium_log:
                print("\n".join(lines_before_renderer[:60]))
    finally:
        mark("closed")
    return marks


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--fresh-pulse", action="store_true")
    ap.add_argument("--cold-fonts", action="store_true")
    ap.add_argument("--chromium-log", action="store_true")
    ap.add_argument("--timeout", type=float, default=40.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-start-") as tmp:
        folder = Path(tmp)
        synthesize("The city council met on Tuesday evening.", folder / "speech.wav")
        page = '<!doctype html><body><h1>probe</h1><audio src="speech.wav" autoplay></audio>'
        (folder / "page.html").write_text(page)
        with serve_directory(folder) as base:
            for i in range(args.runs):
                options = BrowserOptions()
                if args.fresh_pulse:
                    runtime = Path(tempfile.mkdtemp(prefix="probe-pulse-"))
                    os.chmod(runtime, 0o700)
                    options = BrowserOptions(pulse_runtime_dir=runtime)
                if args.cold_fonts:
                    cache = Path(tempfile.mkdtemp(prefix="probe-fc-"))
                    conf = cache / "fonts.conf"
                    conf.write_text(
                        f'<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                        f"<include>/etc/fonts/fonts.conf</include><cachedir>{cache}</cachedir></fontconfig>"
                    )
                    os.environ["FONTCONFIG_FILE"] = str(conf)
                marks = await one_run(f"{base}/page.html", options, chromium_log=args.chromium_log,
                                      timeout_s=args.timeout)  # fmt: skip
                os.environ.pop("FONTCONFIG_FILE", None)
                print(f"run {i + 1}:")
                for name, at in sorted(marks.items(), key=lambda kv: kv[1]):
                    print(f"  {at:6.2f} s  {name}")
                sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
