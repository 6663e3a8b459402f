"""Service benchmark (issue 4): POST → first committed segment on the SSE stream, and word latency
of a live source through the API against the CLI. Prints Markdown tables.

    .venv/bin/python benchmarks/bench_service.py [--runs 3] [--paragraphs 4]

Runs the real ``katopotato serve`` (embedded defaults, a fresh data dir) and the real
``couchpotato transcribe``, on generated speech served over HTTP on 127.0.0.1:

- first segment: time from sending ``POST /v1/sessions`` to reading the first ``segment`` event on
  ``GET /v1/sessions/{id}/events`` (opened as soon as the POST answers), for a recorded file read
  as fast as ASR allows, and read at 1x (``realtime``) like a live source;
- word latency of a live source: the programme read at 1x (``realtime`` through the API,
  ``--realtime`` for the CLI), transcribed through the API (arrival of the segment on the SSE
  stream) and by the CLI (arrival of its jsonl line on stdout); a word's latency is its arrival
  time − (media_epoch + the word's end), media_epoch being the wall time of media t=0 from the
  ``session`` event. Runs alternate between the two paths, so a busy spell of the (shared) machine
  hits both.
- with ``--hls``, the same on a live HLS stream (ffmpeg ``-re``, 1 s segments). There media_epoch
  is when the first audio arrived, and FFmpeg starts three segments behind the live edge, so
  both figures are understated by that backlog; each consumer is started once the playlist is
  full (``HLS_SETTLE_S``), so the backlog, and the comparison, are the same for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from couchpotato.testing import build_programme, hls_live, serve_directory, synthesize
from couchpotato.testing.media import media_duration

BIN = Path(sys.executable).parent
TOKEN = "kp_bench_" + "b" * 32
HLS_SETTLE_S = 7.0  # the playlist holds 6 segments of 1 s: wait until it is full
SHORT_TEXT = (
    "The city council met on Tuesday evening to discuss the new library. "
    "Several residents asked for longer opening hours on weekends."
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def service(data: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env.update(COUCHPOTATO_DATA_DIR=str(data), COUCHPOTATO_API_TOKEN=TOKEN, COUCHPOTATO_URL_ALLOWLIST="127.0.0.0/8")
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "katopotato"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import http.client

        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("katopotato serve did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


async def sse(http: aiohttp.ClientSession, url: str) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """(arrival wall time, event) for each event of the stream, until it ends."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
    async with http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as r:
        async for raw in r.content:
            line = raw.decode().strip()
            if line.startswith("data:"):
                yield time.time(), json.loads(line[5:])


async def post(http: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> str:
    async with http.post(f"{base}/v1/sessions", json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        out = await r.json()
        if r.status != 201:
            raise SystemExit(f"POST failed: {r.status} {out}")
        return str(out["id"])


async def first_segment(http: aiohttp.ClientSession, base: str, url: str, realtime: bool) -> tuple[float, float]:
    """(POST answer seconds, POST → first segment seconds)."""
    t0 = time.perf_counter()
    sid = await post(http, base, {"url": url, "realtime": realtime, "keep_audio": False})
    answered = time.perf_counter() - t0
    first = None
    async for _, ev in sse(http, f"{base}/v1/sessions/{sid}/events"):
        if ev["type"] == "segment" and first is None:
            first = time.perf_counter() - t0
    assert first is not None, "no segment"
    return answered, first


def word_latencies(timed: list[tuple[float, dict[str, Any]]]) -> list[float]:
    epoch = next(ev["media_epoch"] for _, ev in timed if ev["type"] == "session")
    return [at - (epoch + w["end"]) for at, ev in timed if ev["type"] == "segment" for w in ev["words"]]


async def live_api(http: aiohttp.ClientSession, base: str, url: str, realtime: bool) -> list[float]:
    sid = await post(http, base, {"url": url, "keep_audio": False, "realtime": realtime})
    return word_latencies([x async for x in sse(http, f"{base}/v1/sessions/{sid}/events")])


async def live_cli(url: str, realtime: bool) -> list[float]:
    env = dict(os.environ, COUCHPOTATO_URL_ALLOWLIST="127.0.0.0/8")
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "couchpotato"),
        "transcribe",
        url,
        "--format",
        "jsonl",
        *(["--realtime"] if realtime else []),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    timed = []
    async for raw in proc.stdout:
        if raw.strip():
            timed.append((time.time(), json.loads(raw)))
    await proc.wait()
    return word_latencies(timed)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="sessions per first-segment configuration")
    ap.add_argument("--paragraphs", type=int, default=4, help="corpus paragraphs in the live programme")
    ap.add_argument("--live-runs", type=int, default=2, help="live runs per path (API and CLI alternate)")
    ap.add_argument("--skip-first", action="store_true", help="only the live word-latency part")
    ap.add_argument("--hls", action="store_true", help="also measure on a live HLS stream")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-bench-svc-") as tmp:
        root = Path(tmp)
        media = root / "media"
        synthesize(SHORT_TEXT, media / "short.wav")
        programme = build_programme(media / "programme", args.paragraphs)
        print(f"# Service benchmark ({os.cpu_count()} cores; programme {programme.duration_s:.0f} s)\n")
        with serve_directory(media) as media_url, service(root / "data") as base:
            async with aiohttp.ClientSession() as http:
                rows = []
                for realtime in () if args.skip_first else (False, True):
                    answers, firsts = [], []
                    for _ in range(args.runs):
                        answered, first = await first_segment(http, base, f"{media_url}/short.wav", realtime)
                        answers.append(answered)
                        firsts.append(first)
                    rows.append((realtime, answers, firsts))
                short_s = await asyncio.to_thread(media_duration, media / "short.wav")
                if rows:
                    print(f"## POST → first committed segment on the SSE stream ({short_s:.1f} s of speech)\n")
                    print("| source read | POST answered (s, median) | first segment (s, median) | min | max |")
                    print("|---|---:|---:|---:|---:|")
                for realtime, answers, firsts in rows:
                    how = "at 1x (realtime)" if realtime else "as fast as ASR allows"
                    print(
                        f"| {how} | {statistics.median(answers):.2f} | {statistics.median(firsts):.2f} "
                        f"| {min(firsts):.2f} | {max(firsts):.2f} |"
                    )
                paths = ("API (SSE)", "CLI (stdout)")
                kinds = ["file at 1x", *(["live HLS"] if args.hls else [])]
                results: dict[tuple[str, str], list[float]] = {(k, p): [] for k in kinds for p in paths}
                loads: dict[tuple[str, str], list[float]] = {(k, p): [] for k in kinds for p in paths}
                for kind in kinds:
                    for run in range(args.live_runs):  # alternate, so a busy spell of the machine hits both
                        for name in paths if run % 2 == 0 else paths[::-1]:
                            api = name.startswith("API")
                            if kind == "file at 1x":
                                url = f"{media_url}/programme/programme.wav"
                                lat = await (live_api(http, base, url, True) if api else live_cli(url, True))
                            else:
                                folder = root / "live" / f"{name.split()[0].lower()}{run}"
                                with hls_live(programme.path, folder) as playlist, serve_directory(folder) as hls:
                                    await asyncio.sleep(HLS_SETTLE_S)
                                    url = f"{hls}/{playlist.name}"
                                    lat = await (live_api(http, base, url, False) if api else live_cli(url, False))
                            results[(kind, name)] += lat
                            loads[(kind, name)].append(os.getloadavg()[0])
        runs = f"{args.live_runs} run(s) each"
        print(f"\n## Word latency of a live source ({programme.duration_s:.0f} s programme, {runs})\n")
        print("| source | path | words | p50 (s) | p95 (s) | max (s) | load average after each run |")
        print("|---|---|---:|---:|---:|---:|---|")
        for (kind, name), lat in results.items():
            load = ", ".join(f"{x:.1f}" for x in loads[(kind, name)])
            print(
                f"| {kind} | {name} | {len(lat)} | {pct(lat, 50):.2f} | {pct(lat, 95):.2f} | {max(lat):.2f} | {load} |"
            )
        for kind in kinds:
            api95, cli95 = pct(results[(kind, paths[0])], 95), pct(results[(kind, paths[1])], 95)
            print(f"\n{kind}: p95 through the API − p95 of the CLI: {api95 - cli95:+.2f} s (goal: within 0.5 s)")


if __name__ == "__main__":
    asyncio.run(main())
