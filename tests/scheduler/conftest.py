"""Fixtures of the scheduler tests: a broker per backend (real Redis, a unique key prefix per test)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from katopotato.broker import Broker, MemoryBroker
from katopotato.broker.redis import RedisBroker
from tests.servers import server_missing

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL with a key prefix unique to this test; every key under it is deleted afterwards."""
    if not _redis_up():
        server_missing(f"needs a Redis server at {REDIS_HOST}:{REDIS_PORT} (.ci/run starts one)")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix=kptest-{os.getpid()}-{uuid.uuid4().hex[:10]}:"
    yield url
    import redis

    _, prefix = url.split("prefix=")
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """The contract suite runs on every backend."""
    b: Broker = MemoryBroker() if request.param == "memory" else RedisBroker(request.getfixturevalue("redis_url"))
    async with b:
        yield b


REPO = Path(__file__).resolve().parents[2]
TEST_PLUGIN = "tests.scheduler.plugins_for_tests:plugin"


class WorkerProcess:
    """A ``katopotato worker`` subprocess; its stderr goes to a log file."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.proc = proc
        self.log = log
        self.name = name

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while "ready" not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.name} not ready in {timeout_s} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``katopotato worker`` processes (ready when returned); all are killed afterwards."""
    procs: list[WorkerProcess] = []

    def spawn(broker_url: str, *args: str, name: str, ready: bool = True) -> WorkerProcess:
        log = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "COUCHPOTATO_DATA_DIR": str(tmp_path / "data"),
            "COUCHPOTATO_BLOBS": f"file://{tmp_path / 'blobs'}",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [
            sys.executable, "-m", "katopotato.cli", "worker",
            "--broker", broker_url, "--name", name, "--plugin", TEST_PLUGIN, *args,
        ]  # fmt: skip
        with open(log, "wb") as f:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        wp = WorkerProcess(proc, log, name)
        procs.append(wp)
        if ready:
            wp.wait_ready()
        return wp

    yield spawn
    for wp in procs:
        if wp.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(wp.proc.pid, signal.SIGKILL)
            wp.proc.wait()
