"""Fixtures of the cross-part tests: ``katopotato serve`` and ``katopotato worker`` as real
processes sharing a real Redis (a key prefix per test, deleted afterwards), speech served over HTTP.

* ``redis_broker_url``: ``redis://127.0.0.1:6379/0?prefix=<unique>:``; skipped without a server (failed in CI).
* ``speech_url``: about 12 s of generated speech on 127.0.0.1.
* ``processes``: starts ``serve``/``worker`` subprocesses (logs in tmp_path) and kills whatever is
  left at the end.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from couchpotato.testing import serve_directory, synthesize
from tests.servers import server_missing

from ..service.conftest import ADMIN_TOKEN, SPEECH_TEXT, free_port

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
KATOPOTATO = Path(sys.executable).with_name("katopotato")


def _redis_up() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_broker_url() -> Iterator[str]:
    if not _redis_up():
        server_missing(f"needs a Redis server at {REDIS_HOST}:{REDIS_PORT} (.ci/run starts one)")
    prefix = f"kpit-{os.getpid()}-{uuid.uuid4().hex[:10]}:"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}"
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
    finally:
        r.close()


@pytest.fixture(scope="session")
def speech_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("integration-media")
    synthesize(SPEECH_TEXT, folder / "speech.wav")
    with serve_directory(folder) as base:
        yield f"{base}/speech.wav"


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after 30 s); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            return None


@dataclass
class Processes:
    """Starts ``katopotato`` subprocesses that share one environment."""

    tmp: Path
    env: dict[str, str]
    started: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        log = self.tmp / f"{name}-{len(self.started)}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [str(KATOPOTATO), *argv], env=self.env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
        p = Proc(name, proc, log)
        self.started.append(p)
        return p

    def serve(self, *args: str, ready_s: float = 90) -> Proc:
        port = free_port()
        p = self._spawn("serve", ["serve", "--host", "127.0.0.1", "--port", str(port), *args])
        p.port = port
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if p.proc.poll() is not None:
                raise AssertionError(f"serve exited {p.proc.returncode}:\n{p.output()[-3000:]}")
            with contextlib.suppress(OSError):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return p
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer /healthz in {ready_s} s:\n{p.output()[-3000:]}")

    def worker(self, name: str, *args: str, ready_s: float = 90) -> Proc:
        p = self._spawn(name, ["worker", "--name", name, *args])
        deadline = time.monotonic() + ready_s
        while f"worker {name} ready" not in p.output():
            if p.proc.poll() is not None:
                raise AssertionError(f"worker {name} exited {p.proc.returncode}:\n{p.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {name} not ready in {ready_s} s:\n{p.output()[-3000:]}")
            time.sleep(0.1)
        return p


@pytest.fixture
def processes(tmp_path: Path, redis_broker_url: str) -> Iterator[Processes]:
    if not KATOPOTATO.exists():
        pytest.skip(f"{KATOPOTATO} not installed (run make install)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env.update(
        COUCHPOTATO_DATA_DIR=str(tmp_path / "data"),
        COUCHPOTATO_BROKER=redis_broker_url,
        COUCHPOTATO_BLOBS=f"file://{tmp_path / 'blobs'}",
        COUCHPOTATO_API_TOKEN=ADMIN_TOKEN,
        COUCHPOTATO_URL_ALLOWLIST="127.0.0.0/8",
        PYTHONUNBUFFERED="1",
    )
    procs = Processes(tmp_path, env)
    yield procs
    for p in procs.started:
        if p.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.proc.pid, signal.SIGKILL)
            p.proc.wait()
