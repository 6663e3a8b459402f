"""``katopotato serve`` on a shared Redis broker with ``katopotato worker`` processes doing the work:
sessions created through the API are captured and transcribed by the other process; the service
crashing (kill -9) or stopping (SIGTERM) mid-session loses nothing and, once back, re-attaches to
the session that went on without it instead of marking it interrupted."""

from __future__ import annotations

import json
import signal
from typing import Any

import aiohttp
import pytest

from couchpotato.testing import wer

from ..service.conftest import ADMIN_TOKEN, SPEECH_TEXT, read_sse
from .conftest import Processes

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]


async def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, base + path, json=body, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r,
    ):
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


def check_transcript(events: list[tuple[int, dict[str, Any]]]) -> None:
    assert [i for i, _ in events] == list(range(1, len(events) + 1)), "event ids 1, 2, 3… with no hole or repeat"
    seqs = [e["seq"] for _, e in events if e["type"] in ("segment", "gap")]
    assert seqs == list(range(len(seqs))), "every seq once, in order"
    assert [e["type"] for _, e in events].count("session") == 1
    assert events[-1][1]["type"] == "end" and events[-1][1]["reason"] == "end_of_source"
    assert events[-2][1] == {**events[-2][1], "type": "status", "status": "completed"}
    heard = " ".join(e["text"] for _, e in events if e["type"] == "segment")
    assert wer(SPEECH_TEXT, heard) < 0.25, heard


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_an_external_worker_runs_the_session_and_serve_reattaches(
    processes: Processes, speech_url: str, how: str
) -> None:
    worker = processes.worker("ext-worker", "--kinds", "capture,asr")
    serve = processes.serve("--workers", "0")
    status, s = await call(serve.base, "POST", "/v1/sessions", {"url": speech_url, "realtime": True})
    assert status == 201 and s["job_id"] and s["links"]["job"] == f"/v1/jobs/{s['job_id']}"
    sid = s["id"]
    async with aiohttp.ClientSession() as http:
        seen: list[tuple[int, dict[str, Any]]] = []
        while sum(e["type"] == "segment" for _, e in seen) < 1:
            _, more = await read_sse(http, f"{serve.base}/v1/sessions/{sid}/events", ADMIN_TOKEN,
                                     seen[-1][0] if seen else None, limit=1)  # fmt: skip
            seen += more
        code = serve.signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
        if how == "term":
            assert code == 0, serve.output()[-3000:]
            assert "interrupted" not in serve.output()

        serve = processes.serve("--workers", "0")  # the worker went on meanwhile
        status, now = await call(serve.base, "GET", f"/v1/sessions/{sid}")
        assert status == 200 and now["status"] in ("running", "completed"), now
        _, rest = await read_sse(http, f"{serve.base}/v1/sessions/{sid}/events", ADMIN_TOKEN, seen[-1][0])
        check_transcript(seen + rest)
        _, everything = await read_sse(http, f"{serve.base}/v1/sessions/{sid}/events", ADMIN_TOKEN)
        assert everything == seen + rest

    status, done = await call(serve.base, "GET", f"/v1/sessions/{sid}")
    assert done["status"] == "completed" and done["segments"] == sum(e["type"] == "segment" for _, e in everything)
    status, capture = await call(serve.base, "GET", f"/v1/jobs/{s['job_id']}")
    assert capture["kind"] == "transcription.capture" and capture["worker"] == "ext-worker"
    status, asr = await call(serve.base, "GET", "/v1/jobs?kind=transcription.asr&limit=200")
    mine = [j for j in asr["jobs"] if j["params"]["session_id"] == sid]
    assert mine and {j["worker"] for j in mine} == {"ext-worker"}, "the ASR ran in the worker process"
    assert {j["status"] for j in mine} == {"succeeded"}
    status, found = await call(serve.base, "GET", f"/v1/search?q=library&session={sid}")
    assert status == 200 and found["hits"]
    assert worker.proc.poll() is None


async def test_serve_refuses_no_workers_on_the_memory_broker(processes: Processes) -> None:
    processes.env["COUCHPOTATO_BROKER"] = "memory://"
    p = processes._spawn("serve", ["serve", "--workers", "0", "--port", "0"])
    assert p.proc.wait(60) == 2
    out = p.output()
    assert "Traceback" not in out and "katopotato: error:" in out and "--workers 1" in out


async def test_partials_travel_from_the_capturing_worker_through_redis(processes: Processes, speech_url: str) -> None:
    """The capture job drafts in the worker process; the API process (no workers of its own) merges
    the drafts from Redis into the SSE stream of a client that asked for them."""
    processes.worker("ext-worker", "--kinds", "capture,asr")
    serve = processes.serve("--workers", "0")
    status, s = await call(serve.base, "POST", "/v1/sessions", {"url": speech_url, "realtime": True})
    assert status == 201
    events: list[tuple[str | None, dict[str, Any]]] = []
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "text/event-stream"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{serve.base}/v1/sessions/{s['id']}/events?partials=1", headers=headers) as r,
    ):
        assert r.status == 200
        event_id, data = None, []
        async for raw in r.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                events.append((event_id, json.loads("\n".join(data))))
                event_id, data = None, []
    partials = [e for i, e in events if e["type"] == "partial"]
    assert partials and all(i is None for i, e in events if e["type"] == "partial")
    check_transcript([(int(i), e) for i, e in events if i is not None])
    committed = -1
    for _, e in events:
        if e["type"] == "segment":
            committed = e["seq"]
        elif e["type"] == "partial":
            assert e["seq"] > committed
