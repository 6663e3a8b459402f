"""``katopotato serve`` and ``katopotato tokens`` as users run them: first-start admin token,
restart after a crash or a stop loses nothing committed, tokens made on the command line."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from katopotato.cli import command_modules

from .conftest import ADMIN_TOKEN, KATOPOTATO, Served, read_sse, serve_env

pytestmark = pytest.mark.timeout(240)


async def call(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


def tokens_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KATOPOTATO), "tokens", *args],
        env=serve_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_first_start_shows_an_admin_token_once_and_cli_tokens_work(
    run_serve: Callable[..., Served], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = run_serve(serve_env(data))
    banner = "\n".join(first.stdout_lines)
    assert f"http://127.0.0.1:{first.port}/" in banner
    token = next(line.strip() for line in first.stdout_lines if line.strip().startswith("kp_"))
    assert (await call(first.base, "GET", "/v1/whoami", token))[1]["scopes"] == ["admin"]
    assert (await call(first.base, "GET", "/v1/sessions", "kp_guess"))[0] == 401
    assert token not in (data / "couchpotato.db").read_bytes().decode("latin-1"), "stored hashed, never as is"

    made = tokens_cli(data, "create", "--scope", "search", "--scope", "sessions:read,sessions:write", "--name", "ci")
    assert made.returncode == 0, made.stderr
    cli_token = made.stdout.strip()
    assert cli_token.startswith("kp_") and "\n" not in cli_token
    assert (await call(first.base, "GET", "/v1/search?q=x", cli_token))[0] == 200
    assert (await call(first.base, "GET", "/metrics", cli_token))[0] == 403
    listed = tokens_cli(data, "list")
    assert listed.returncode == 0 and "search" in listed.stdout and cli_token not in listed.stdout

    # an installed plugin's scope (the SMS plugin's) is one a token may carry, and opens its routes
    texter = tokens_cli(data, "create", "--scope", "sms:text", "--name", "Ana")
    assert texter.returncode == 0, texter.stderr
    texting = texter.stdout.strip()
    assert (await call(first.base, "GET", "/v1/plugins/sms/opt-outs/2025550143", texting))[0] == 200
    assert (await call(first.base, "GET", "/v1/sessions", texting))[0] == 403

    bad = tokens_cli(data, "create", "--scope", "everything")
    assert bad.returncode == 2 and "unknown scope" in bad.stderr and "Traceback" not in bad.stderr
    first.kill(signal.SIGTERM)
    assert first.proc.returncode == 0

    second = run_serve(serve_env(data))
    assert not any(line.strip().startswith("kp_") for line in second.stdout_lines), "shown once only"
    assert (await call(second.base, "GET", "/v1/whoami", token))[0] == 200


async def test_a_crash_loses_nothing_committed(
    run_serve: Callable[..., Served], tmp_path: Path, speech_url: str
) -> None:
    env = serve_env(tmp_path / "data", COUCHPOTATO_API_TOKEN=ADMIN_TOKEN)
    server = run_serve(env)
    status, s = await call(server.base, "POST", "/v1/sessions", ADMIN_TOKEN, {"url": speech_url, "realtime": True})
    assert status == 201
    sid = s["id"]
    url = f"{server.base}/v1/sessions/{sid}/events"
    async with aiohttp.ClientSession() as http:
        seen: list[tuple[int, dict[str, Any]]] = []
        while sum(e["type"] == "segment" for _, e in seen) < 1:
            _, more = await read_sse(http, url, ADMIN_TOKEN, seen[-1][0] if seen else None, limit=1)
            seen += more
        server.kill(signal.SIGKILL)  # a crash: no shutdown code runs

        server = run_serve(env)
        status, after = await call(server.base, "GET", f"/v1/sessions/{sid}", ADMIN_TOKEN)
        assert status == 200 and after["status"] == "interrupted" and after["health"] == "ended"
        status, everything = await read_sse(http, f"{server.base}/v1/sessions/{sid}/events", ADMIN_TOKEN)
        assert everything[: len(seen)] == seen, "every event a client saw is still there, unchanged"
        _, rest = await read_sse(http, f"{server.base}/v1/sessions/{sid}/events", ADMIN_TOKEN, seen[-1][0])
        assert seen + rest == everything, "resuming after the crash repeats nothing and loses nothing"
        assert [e["type"] for _, e in rest][-2:] == ["status", "end"]
        assert rest[-1][1]["reason"] == "interrupted"

    word = next(e for _, e in seen if e["type"] == "segment")["text"].split()[-1].strip(".,").lower()
    status, found = await call(server.base, "GET", f"/v1/search?q={word}&session={sid}", ADMIN_TOKEN)
    assert status == 200 and found["hits"], f"the committed segment is still searchable ({word!r})"
    status, listed = await call(server.base, "GET", "/v1/sessions?status=interrupted", ADMIN_TOKEN)
    assert [x["id"] for x in listed["sessions"]] == [sid]


async def test_a_stop_of_the_service_interrupts_running_sessions_cleanly(
    run_serve: Callable[..., Served], tmp_path: Path, speech_url: str
) -> None:
    env = serve_env(tmp_path / "data", COUCHPOTATO_API_TOKEN=ADMIN_TOKEN)
    server = run_serve(env)
    status, s = await call(server.base, "POST", "/v1/sessions", ADMIN_TOKEN, {"url": speech_url, "realtime": True})
    assert status == 201
    async with aiohttp.ClientSession() as http:
        url = f"{server.base}/v1/sessions/{s['id']}/events"
        _, seen = await read_sse(http, url, ADMIN_TOKEN, limit=3)
        server.kill(signal.SIGTERM)
        assert server.proc.returncode == 0
        server = run_serve(env)
        assert not any("interrupted" in line for line in server.stdout_lines), "marked at shutdown already"
        _, rest = await read_sse(http, f"{server.base}/v1/sessions/{s['id']}/events", ADMIN_TOKEN, seen[-1][0])
    assert rest[-1][1] == {**rest[-1][1], "type": "end", "reason": "interrupted"}
    assert rest[-2][1]["status"] == "interrupted" and "stopped" in rest[-2][1]["error"]


def test_command_modules_are_discovered() -> None:
    names = {m.__name__.rsplit(".", 1)[-1] for m in command_modules()}
    assert {"serve", "tokens"} <= names
    p = subprocess.run([str(KATOPOTATO), "serve", "--port", "notaport"], capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("katopotato: error: argument --port")
