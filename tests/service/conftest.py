"""Fixtures of the service tests: real servers on real ports, the real ASR model, real databases.

* ``speech``/``speech_url``: about 12 s of generated speech served over HTTP on 127.0.0.1.
* ``backend``: ``sqlite`` (a file in tmp_path) or ``postgresql`` (a database made for the test on
  the local PostgreSQL server and dropped after it); tests that take it run on both.
* ``make_service``: a factory of ``Service`` + aiohttp app on a real port (sessions on the job
  scheduler with embedded workers, as ``katopotato serve`` runs them); cleaned up after.
* ``run_serve``: the ``katopotato serve`` command as users run it, in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from couchpotato.testing import serve_directory, synthesize
from katopotato.api import Service, create_app
from katopotato.plugin_host import load_plugins
from katopotato.settings import Settings
from tests.scheduler.plugins_for_tests import SPEC as TEST_PLUGIN
from tests.servers import server_missing

ADMIN_TOKEN = "kp_test_admin_" + "x" * 24
PG_DSN = os.environ.get("COUCHPOTATO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SPEECH_TEXT = (
    "The city council met on Tuesday evening to discuss the new library. "
    "Several residents asked for longer opening hours on weekends. "
    "The mayor said the budget would be published next month."
)
# one sentence without a pause worth cutting in, about 9 s long
BREATHLESS_TEXT = (
    "The committee that met on Tuesday evening agreed without much debate that the new library on the "
    "east side of town should stay open longer on weekends and during the school holidays"
)
KATOPOTATO = Path(sys.executable).with_name("katopotato")


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("service-media")
    synthesize(SPEECH_TEXT, folder / "speech.wav")
    synthesize(BREATHLESS_TEXT, folder / "breathless.wav")
    (folder / "page.txt").write_text("not media at all\n" * 50)
    hello = synthesize("Hello from the city council.", folder / "hello.wav")
    silence = ["-f", "lavfi", "-t", "8", "-i", "anullsrc=r=16000:cl=mono"]
    concat = ["-filter_complex", "[0][1][2]concat=n=3:v=0:a=1", str(folder / "pause.wav")]
    subprocess.run(  # speech, 8 s of digital silence, speech: the health goes silent and back
        ["ffmpeg", "-v", "error", "-y", "-i", str(hello), *silence, "-i", str(hello), *concat],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture(scope="session")
def media_base(speech_dir: Path) -> Iterator[str]:
    with serve_directory(speech_dir) as url:
        yield url


@pytest.fixture(scope="session")
def speech_url(media_base: str) -> str:
    return f"{media_base}/speech.wav"


# --- databases ----------------------------------------------------------------------------------


def _pg_available() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as e:
        return f"no PostgreSQL server on 127.0.0.1:5432 ({e})"


@contextlib.asynccontextmanager
async def pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped on exit; yields its SQLAlchemy async URL."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"kp_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'couchpotato.db'}"
        return
    why = _pg_available()
    if why:
        server_missing(why)
    async with pg_database() as url:
        yield url


# --- the service in-process, on a real port ------------------------------------------------------


@dataclass
class Running:
    """A service answering on ``base``; ``client`` sends the admin token unless told otherwise."""

    service: Service
    base: str
    http: aiohttp.ClientSession
    token: str = ADMIN_TOKEN
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def get(self, path: str, token: str | None = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(self.url(path), headers=self.auth(token), **kw) as r:
            return r.status, await _body(r)

    async def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        async with self.http.post(self.url(path), json=body, headers=self.auth(token)) as r:
            return r.status, await _body(r)

    async def delete(self, path: str, token: str | None = None) -> tuple[int, Any]:
        async with self.http.delete(self.url(path), headers=self.auth(token)) as r:
            return r.status, await _body(r)

    async def sse(
        self, session_id: str, *, last_event_id: int | None = None, limit: int | None = None, within_s: float = 120
    ) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        """Read the SSE stream until it ends (or ``limit`` events); returns (status, [(id, event)])."""
        return await read_sse(
            self.http, self.url(f"/v1/sessions/{session_id}/events"), self.token, last_event_id, limit, within_s
        )


async def _body(r: aiohttp.ClientResponse) -> Any:
    if r.content_type == "application/json":
        return await r.json()
    return await r.text()


async def read_sse(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    last_event_id: int | None = None,
    limit: int | None = None,
    within_s: float = 120,
) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    import json

    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    out: list[tuple[int, dict[str, Any]]] = []
    async with http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=within_s)) as r:
        if r.status != 200:
            return r.status, out
        assert r.content_type == "text/event-stream"
        event_id, data = None, []
        async for raw in r.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                assert event_id is not None, "every event carries an id"
                out.append((event_id, json.loads("\n".join(data))))
                event_id, data = None, []
                if limit is not None and len(out) >= limit:
                    break
        return r.status, out


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_token": ADMIN_TOKEN,
        "url_allowlist": "127.0.0.0/8",
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def make_service(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Running]]]:
    @contextlib.asynccontextmanager
    async def start(registry: Any = None, **overrides: Any) -> AsyncIterator[Running]:
        settings = make_settings(tmp_path, **overrides)
        if registry is None:  # the service's own plugins and the tests' (testing.echo, testing.noop)
            registry = load_plugins(extra=[TEST_PLUGIN], settings=settings.plugin_settings())
        async with Service.open(settings, registry=registry) as service:
            app = create_app(service)
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            try:
                async with aiohttp.ClientSession() as http:
                    yield Running(service, f"http://127.0.0.1:{port}", http)
            finally:
                await runner.cleanup()

    yield start


@pytest.fixture
async def running(
    make_service: Callable[..., contextlib.AbstractAsyncContextManager[Running]],
) -> AsyncIterator[Running]:
    async with make_service() as r:
        yield r


# --- the real command, in a subprocess -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    stdout_lines: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUCHPOTATO_")}
    env.update(COUCHPOTATO_DATA_DIR=str(data_dir), COUCHPOTATO_URL_ALLOWLIST="127.0.0.0/8")
    env.update(extra)
    return env


@pytest.fixture
def run_serve() -> Iterator[Callable[..., Served]]:
    """Start ``katopotato serve`` on a free port and wait for /healthz; killed after the test."""
    if not KATOPOTATO.exists():
        pytest.skip(f"{KATOPOTATO} not installed (run make install)")
    started: list[Served] = []

    def start(env: dict[str, str], ready_s: float = 90) -> Served:
        import http.client

        port = free_port()
        proc = subprocess.Popen(
            [str(KATOPOTATO), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        served = Served(proc, port, [])
        started.append(served)
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"katopotato serve exited with {proc.returncode}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    break
                c.close()
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("katopotato serve did not answer /healthz in time")
        # the banner is printed before the port opens; read what is there without blocking forever
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        with contextlib.suppress(TypeError, OSError):
            served.stdout_lines = (proc.stdout.read() or "").splitlines()
        return served

    yield start
    for s in started:
        s.kill(signal.SIGTERM)
        if s.proc.stdout is not None:
            s.proc.stdout.close()
