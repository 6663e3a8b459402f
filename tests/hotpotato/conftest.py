"""Fixtures of the HotPotato tests: brokers (real Redis, a unique key prefix per test), programmes,
live HLS streams made by ffmpeg, live pages played in step with the wall clock, workers."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from couchpotato.testing import Programme, build_programme, hls_live, serve_directory
from hotpotato.testing import LIVE_PAGE
from katopotato.broker import Broker, MemoryBroker
from katopotato.broker.redis import RedisBroker

from ..conftest import requires_media_tools
from ..scheduler.conftest import REPO, WorkerProcess, redis_url

__all__ = ["redis_url"]

SR = 16_000


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    b: Broker = MemoryBroker() if request.param == "memory" else RedisBroker(request.getfixturevalue("redis_url"))
    async with b:
        yield b


@pytest.fixture(scope="session")
def programme(tmp_path_factory: pytest.TempPathFactory) -> Programme:
    """Two corpus paragraphs in two voices: about 38 s."""
    if requires_media_tools.args[0]:
        pytest.skip(requires_media_tools.kwargs["reason"])
    return build_programme(tmp_path_factory.mktemp("hp-programme") / "p2", 2)


@pytest.fixture(scope="session")
def quiet_programme(tmp_path_factory: pytest.TempPathFactory) -> Programme:
    """The same two paragraphs with 12 s of digital silence between them (a source that goes quiet)."""
    if requires_media_tools.args[0]:
        pytest.skip(requires_media_tools.kwargs["reason"])
    return build_programme(tmp_path_factory.mktemp("hp-quiet") / "p2q", 2, pause_s=12.0)


def read_wav(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True)
class LiveHls:
    """A live HLS stream of a programme, served over HTTP."""

    url: str
    folder: Path
    started_at: float


@pytest.fixture
def live_hls(tmp_path: Path) -> Iterator[Callable[..., LiveHls]]:
    """Start live HLS streams (ffmpeg -re, 1 s segments, a ``window``-segment live window: 6 by
    default); stopped afterwards."""
    stack = contextlib.ExitStack()
    counter = itertools.count()

    def start(prog: Programme, window: int = 6) -> LiveHls:
        folder = tmp_path / f"hls-{next(counter)}"
        playlist = stack.enter_context(hls_live(prog.path, folder, window=window))
        base = stack.enter_context(serve_directory(folder))
        return LiveHls(f"{base}/{playlist.name}", folder, time.time())

    with stack:
        yield start


@dataclass(frozen=True)
class LiveSite:
    """Pages served from 127.0.0.1: ``live.html?src=…&t0=…`` plays a programme in step with the clock."""

    base: str
    folder: Path

    def live_url(self, audio: str, t0: float) -> str:
        return f"{self.base}/live.html?src={audio}&t0={t0:.3f}"

    def vod_url(self, audio: str) -> str:
        """Not live: whoever opens it hears the programme from its start."""
        return f"{self.base}/live.html?src={audio}&vod=1"


@pytest.fixture(scope="session")
def live_site(
    tmp_path_factory: pytest.TempPathFactory, programme: Programme, quiet_programme: Programme
) -> Iterator[LiveSite]:
    folder = tmp_path_factory.mktemp("hp-site")
    shutil.copy(programme.path, folder / "programme.wav")
    shutil.copy(quiet_programme.path, folder / "quiet.wav")
    (folder / "live.html").write_text(LIVE_PAGE, encoding="utf-8")
    with serve_directory(folder) as base:
        yield LiveSite(base, folder)


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``katopotato worker`` processes (builtin plugins only), sharing a blob folder; all killed afterwards."""
    procs: list[WorkerProcess] = []

    def spawn(broker_url: str, *args: str, name: str, ready: bool = True) -> WorkerProcess:
        log = tmp_path / f"worker-{name}.log"
        env = {
            **os.environ,
            "COUCHPOTATO_DATA_DIR": str(tmp_path / "data"),
            "COUCHPOTATO_BLOBS": f"file://{tmp_path / 'blobs'}",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, "-m", "katopotato.cli", "worker", "--broker", broker_url, "--name", name,
                "--log-level", "info", *args]  # fmt: skip
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
