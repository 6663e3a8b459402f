"""Scheduler benchmarks, printed as tables.

1. No-op job throughput through the Redis backend, enqueue-to-done: N jobs enqueued as fast as
   one client can, timed until the last one finished, with 1 and 4 worker processes; arq (the
   asyncio Redis job queue) doing the same work in the same run, with the same concurrency per
   process.
2. A live session (a generated programme read at 1x) with its ASR spread over 3 worker processes
   vs one: word latency (commit time minus the word's end in the programme) p50/p95, and WER.

    .venv/bin/python benchmarks/bench_scheduler.py [--jobs 3000] [--paragraphs 4] [--skip-live]

Needs Redis at 127.0.0.1:6379 (uses db 1 and a fresh key prefix, deleted afterwards), ffmpeg,
espeak-ng and flite. The machine's cores are shared with everything else running: numbers are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from couchpotato.testing import Programme

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REDIS = "redis://127.0.0.1:6379/1"
CONCURRENCY = 16  # jobs per worker process, ours and arq's
ARQ_POLL_DELAY_S = 0.05  # arq's default is 0.5 s; lowered so arq is not held back by idle polling


# --- worker processes ------------------------------------------------------------------------


@contextlib.contextmanager
def processes(argvs: list[list[str]], env: dict[str, str], ready: str | None, log_dir: Path) -> Iterator[None]:
    procs = []
    logs = []
    try:
        for i, argv in enumerate(argvs):
            log = log_dir / f"proc-{uuid.uuid4().hex[:6]}-{i}.log"
            with open(log, "wb") as f:
                procs.append(
                    subprocess.Popen(
                        argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            logs.append(log)
        deadline = time.monotonic() + 90
        for proc, log in zip(procs, logs, strict=True):
            while ready and ready not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
        yield
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def ours_argv(url: str, kinds: str, concurrency: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "katopotato.cli", "worker", "--broker", url, "--kinds", kinds,
            "--concurrency", str(concurrency), "--log-level", "warning", *extra]  # fmt: skip


def arq_argv(queue: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--arq-worker", queue]


def run_arq_worker(queue: str) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker

    async def noop(ctx: dict[str, object]) -> None:
        return None

    print("arq worker ready", flush=True)
    Worker(
        functions=[noop],
        redis_settings=RedisSettings.from_dsn(REDIS),
        queue_name=queue,
        max_jobs=CONCURRENCY,
        poll_delay=ARQ_POLL_DELAY_S,
    ).run()


# --- 1. throughput ----------------------------------------------------------------------------


async def _enqueue_all(n: int, one: object) -> None:
    batch = 200
    for i in range(0, n, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, n - i))))  # type: ignore[operator]


async def ours_throughput(n: int, workers: int, env: dict[str, str], log_dir: Path) -> float:
    from katopotato.broker.redis import RedisBroker
    from katopotato.plugin_host import PluginRegistry, builtin_plugins
    from katopotato.scheduler import Scheduler
    from tests.scheduler.plugins_for_tests import SPEC, plugin

    url = f"{REDIS}?prefix=bench-{uuid.uuid4().hex[:8]}:"
    async with RedisBroker(url) as broker:
        try:
            sched = Scheduler(broker, PluginRegistry([*builtin_plugins(), plugin]))
            # testing.noop, a job doing nothing, is the tests' plugin's
            argv = ours_argv(url, "testing.noop", CONCURRENCY, "--plugin", SPEC)
            with processes([argv for _ in range(workers)], env, "ready", log_dir):
                t0 = time.perf_counter()
                await _enqueue_all(n, lambda: sched.enqueue("testing.noop"))
                while True:
                    st = await broker.stats(["testing.noop"])
                    if st.ready["testing.noop"] == 0 and st.running == 0 and st.delayed == 0:
                        break
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - t0
            done = len(await broker.list_jobs(kind="testing.noop", status="succeeded", limit=n + 1))
            if done != n:
                raise RuntimeError(f"ours: {done} of {n} jobs succeeded")
            return n / elapsed
        finally:
            await broker.delete_all()


async def arq_throughput(n: int, workers: int, env: dict[str, str], log_dir: Path) -> float:
    from arq import create_pool
    from arq.connections import RedisSettings

    queue = f"bench-arq-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(RedisSettings.from_dsn(REDIS), default_queue_name=queue)
    ids: list[str] = []
    try:
        with processes([arq_argv(queue) for _ in range(workers)], env, "ready", log_dir):

            async def one() -> None:
                job = await pool.enqueue_job("noop", _queue_name=queue)
                assert job is not None
                ids.append(job.job_id)

            t0 = time.perf_counter()
            await _enqueue_all(n, one)
            while True:  # another process finishes them: poll the queue
                if await pool.zcard(queue) == 0:
                    break
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - t0
        results = await pool.all_job_results()
        done = len({r.job_id for r in results} & set(ids))
        if done != n:
            raise RuntimeError(f"arq: {done} of {n} jobs have results")
        return n / elapsed
    finally:
        keys = [f"arq:result:{i}" for i in ids] + [f"arq:job:{i}" for i in ids] + [queue, f"{queue}:health-check"]
        for i in range(0, len(keys), 500):
            await pool.delete(*keys[i : i + 500])
        await pool.aclose()


# --- 2. live session latency -------------------------------------------------------------------


async def live_latency(programme: Programme, asr_workers: int, env: dict[str, str], log_dir: Path) -> dict[str, float]:
    from couchpotato.records import SessionEvent, TranscriptEvent
    from couchpotato.testing import wer
    from katopotato.broker.redis import RedisBroker
    from katopotato.plugin_host import PluginRegistry, builtin_plugins
    from katopotato.scheduler import Scheduler
    from katopotato.transcription import start_session, transcript_events

    url = f"{REDIS}?prefix=bench-{uuid.uuid4().hex[:8]}:"
    setting = ("--setting", "transcription.allow_local=true")
    argvs = [ours_argv(url, "capture", 2, *setting)] + [ours_argv(url, "asr", 1, *setting) for _ in range(asr_workers)]
    async with RedisBroker(url) as broker:
        try:
            with processes(argvs, env, "ready", log_dir):
                sid = uuid.uuid4().hex[:12]
                await start_session(
                    Scheduler(broker, PluginRegistry(builtin_plugins())), sid, str(programme.path), realtime=True
                )
                epoch = 0.0
                latencies: list[float] = []
                texts: list[str] = []
                async for _id, ev in transcript_events(broker, sid):
                    if isinstance(ev, SessionEvent):
                        epoch = ev.media_epoch
                    elif isinstance(ev, TranscriptEvent):
                        texts.append(ev.text)
                        latencies += [ev.emitted_at - (epoch + w.end) for w in ev.words]
            lat = np.asarray(latencies)
            return {
                "p50": float(np.percentile(lat, 50)),
                "p95": float(np.percentile(lat, 95)),
                "max": float(lat.max()),
                "words": float(len(lat)),
                "wer": wer(programme.text, " ".join(texts)),
            }
        finally:
            await broker.delete_all()


async def main(args: argparse.Namespace) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        log_dir = Path(tmp)
        env["COUCHPOTATO_DATA_DIR"] = str(log_dir / "data")
        env["COUCHPOTATO_BLOBS"] = f"file://{log_dir / 'blobs'}"
        print(
            f"## No-op jobs through Redis, enqueue-to-done ({args.jobs} jobs, {CONCURRENCY} jobs at once per "
            f"process; arq poll_delay {ARQ_POLL_DELAY_S} s; {os.cpu_count()} cores, shared)\n"
        )
        print("| worker processes | katopotato jobs/s | arq jobs/s | ratio |")
        print("|---:|---:|---:|---:|")
        for workers in (1, 4):
            ours = await ours_throughput(args.jobs, workers, env, log_dir)
            theirs = await arq_throughput(args.jobs, workers, env, log_dir)
            print(f"| {workers} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |", flush=True)
        if args.skip_live:
            return
        from couchpotato.testing import build_programme

        programme = build_programme(log_dir / "programme", args.paragraphs)
        print(
            f"\n## Live session at 1x ({programme.duration_s:.0f} s programme, {args.paragraphs} voices), "
            "word latency = commit time − the word's end\n"
        )
        print("| ASR worker processes | words | p50 s | p95 s | max s | WER |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n in (1, 3):
            r = await live_latency(programme, n, env, log_dir)
            print(
                f"| {n} | {r['words']:.0f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | {r['wer']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--paragraphs", type=int, default=4)
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--arq-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.arq_worker:
        run_arq_worker(a.arq_worker)
    else:
        asyncio.run(main(a))
