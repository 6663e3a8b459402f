"""The jobs API on a real port, jobs run by the service's embedded workers: plugins and their
schemas, core jobs end to end (echo, transcribing recorded files), progress over SSE with
Last-Event-ID resume, cancel, dead letters and requeue, idempotency, paging, auth, plugin routes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from katopotato.auth import TokenStore
from katopotato.plugin import Plugin
from katopotato.plugin_host import load_plugins

from .conftest import Running

pytestmark = pytest.mark.timeout(180)

Factory = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


async def read_job_sse(
    r: Running, job_id: str, *, last_event_id: str | None = None, limit: int | None = None, within_s: float = 60
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    headers = {**r.auth(), "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    out: list[tuple[str, dict[str, Any]]] = []
    url = r.url(f"/v1/jobs/{job_id}/events")
    async with r.http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=within_s)) as resp:
        if resp.status != 200:
            return resp.status, out
        assert resp.content_type == "text/event-stream"
        event_id, data = None, []
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                assert event_id is not None, "every event carries an id"
                out.append((event_id, json.loads("\n".join(data))))
                event_id, data = None, []
                if limit is not None and len(out) >= limit:
                    break
    return 200, out


async def wait_status(r: Running, job_id: str, statuses: set[str], within_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status, job = await r.get(f"/v1/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in statuses:
            return dict(job)
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")


async def test_plugins_are_listed_with_their_jobs_schemas_and_schedules(running: Running) -> None:
    status, out = await running.get("/v1/plugins")
    assert status == 200
    plugins = {p["name"]: p for p in out["plugins"]}
    assert {"core", "transcription", "testing"} <= set(plugins)
    core = plugins["core"]
    jobs = {j["kind"]: j for j in [*core["jobs"], *plugins["testing"]["jobs"]]}
    assert {"testing.echo", "core.transcribe_files", "core.purge_audio"} <= set(jobs)
    assert "core.echo" not in jobs and "core.noop" not in jobs  # the tests' jobs are not shipped
    echo = jobs["testing.echo"]["params_schema"]
    assert echo["type"] == "object" and {"value", "sleep_s", "steps", "fail_tries"} <= set(echo["properties"])
    assert jobs["core.transcribe_files"]["params_schema"]["required"] == ["sources"]
    assert {"name": "nightly_purge", "cron": "17 3 * * *", "kind": "core.purge_audio", "params": {}} in core[
        "schedules"
    ]
    assert core["routes"] is None and core["settings_schema"]["type"] == "object"


async def test_echo_with_progress_over_sse_and_resume(running: Running) -> None:
    status, job = await running.post(
        "/v1/jobs", {"kind": "testing.echo", "params": {"value": {"a": [1, 2]}, "sleep_s": 1.5, "steps": 5}}
    )
    assert status == 202 and job["status"] == "queued" and job["kind"] == "testing.echo"
    assert job["params"]["steps"] == 5 and job["tries"] == 0 and not job["dead"]
    jid = job["id"]
    status, first = await read_job_sse(running, jid, limit=3)
    assert status == 200 and [e["status"] for _, e in first][:2] == ["queued", "running"]
    status, rest = await read_job_sse(running, jid, last_event_id=first[-1][0])
    assert status == 200
    events = first + rest
    ids = [i for i, _ in events]
    assert len(set(ids)) == len(ids), "resuming repeats nothing"
    progress = [e["progress"] for _, e in events if e["type"] == "progress"]
    assert [p["done"] for p in progress] == [1, 2, 3, 4, 5] and progress[-1]["total"] == 5
    assert progress[0]["message"] == "step 1 of 5"
    assert events[-1][1]["type"] == "status" and events[-1][1]["status"] == "succeeded"

    status, everything = await read_job_sse(running, jid)  # a client arriving after the end
    assert [i for i, _ in everything] == ids
    async with running.http.get(
        running.url(f"/v1/jobs/{jid}/events"), headers={**running.auth(), "Last-Event-ID": ids[-1]}
    ) as r:
        assert r.status == 204  # nothing follows: EventSource stops reconnecting
    status, done = await running.get(f"/v1/jobs/{jid}")
    assert status == 200 and done["status"] == "succeeded" and done["has_result"] and done["tries"] == 1
    assert done["progress"] == {"done": 5.0, "total": 5.0, "message": "step 5 of 5"}
    status, result = await running.get(f"/v1/jobs/{jid}/result")
    assert status == 200 and result == {"id": jid, "result": {"a": [1, 2]}}
    for bad in ("not-an-id", "1-2-3"):
        async with running.http.get(
            running.url(f"/v1/jobs/{jid}/events"), headers={**running.auth(), "Last-Event-ID": bad}
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_request"


async def test_transcribe_files_and_requeue_from_dead_letters(running: Running, speech_url: str) -> None:
    status, job = await running.post("/v1/jobs", {"kind": "core.transcribe_files", "params": {"sources": [speech_url]}})
    assert status == 202
    done = await wait_status(running, job["id"], {"succeeded", "failed"}, within_s=120)
    assert done["status"] == "succeeded", done
    status, result = await running.get(f"/v1/jobs/{job['id']}/result")
    [file] = result["result"]["files"]
    assert file["source"] == speech_url and "library" in file["text"].lower() and file["segments"] >= 1
    assert await running.service.blobs.exists(file["transcript"])
    status, children = await running.get("/v1/jobs?kind=core.transcribe_file")
    assert [c["parent_id"] for c in children["jobs"]] == [job["id"]]

    # a recorded file that is not there yet: the job fails its tries and is dead-lettered
    status, job = await running.post(
        "/v1/jobs", {"kind": "core.transcribe_file", "params": {"source": "blob:uploads/speech.wav"}}
    )
    dead = await wait_status(running, job["id"], {"failed", "succeeded"}, within_s=60)
    assert dead["status"] == "failed" and dead["dead"] and dead["tries"] == dead["max_tries"] == 2
    assert dead["error"] and "speech.wav" in dead["error"]
    status, err = await running.get(f"/v1/jobs/{job['id']}/result")
    assert status == 409 and err["error"]["code"] == "job_failed"
    status, listed = await running.get("/v1/jobs?dead=true")
    assert status == 200 and [j["id"] for j in listed["jobs"]] == [job["id"]]

    async with running.http.get(speech_url) as resp:  # the file arrives
        await running.service.blobs.put("uploads/speech.wav", await resp.read())
    status, again = await running.post(f"/v1/jobs/{job['id']}/requeue", None)
    assert status == 200 and again["status"] == "queued" and again["tries"] == 0 and not again["dead"]
    ok = await wait_status(running, job["id"], {"succeeded", "failed"}, within_s=120)
    assert ok["status"] == "succeeded" and ok["tries"] == 1
    status, result = await running.get(f"/v1/jobs/{job['id']}/result")
    assert "library" in result["result"]["text"].lower()
    status, listed = await running.get("/v1/jobs?dead=true")
    assert listed["jobs"] == []
    status, err = await running.post(f"/v1/jobs/{job['id']}/requeue", None)
    assert status == 409 and err["error"]["code"] == "job_state"


async def test_cancel_idempotency_paging_and_errors(running: Running) -> None:
    status, long = await running.post("/v1/jobs", {"kind": "testing.echo", "params": {"sleep_s": 60, "steps": 60}})
    await wait_status(running, long["id"], {"running"})
    status, err = await running.get(f"/v1/jobs/{long['id']}/result")
    assert status == 409 and err["error"]["code"] == "job_not_finished"
    status, cancelling = await running.delete(f"/v1/jobs/{long['id']}")
    assert status == 202 and cancelling["cancel_requested"]
    cancelled = await wait_status(running, long["id"], {"cancelled"}, within_s=30)
    assert cancelled["finished_at"] is not None
    status, err = await running.get(f"/v1/jobs/{long['id']}/result")
    assert status == 409 and err["error"]["code"] == "job_cancelled"
    status, again = await running.delete(f"/v1/jobs/{long['id']}")
    assert status == 200 and again["status"] == "cancelled"

    body = {"kind": "testing.echo", "params": {"value": 7}, "idempotency_key": "nightly-7", "priority": 5}
    status, first = await running.post("/v1/jobs", body)
    status2, second = await running.post("/v1/jobs", body)
    assert (status, status2) == (202, 200) and first["id"] == second["id"] and first["priority"] == 5

    made = [(await running.post("/v1/jobs", {"kind": "testing.noop"}))[1]["id"] for _ in range(3)]
    status, page1 = await running.get("/v1/jobs?kind=testing.noop&limit=2")
    assert status == 200 and len(page1["jobs"]) == 2 and page1["next_cursor"]
    status, page2 = await running.get(f"/v1/jobs?kind=testing.noop&limit=2&cursor={page1['next_cursor']}")
    assert [j["id"] for j in page1["jobs"] + page2["jobs"]] == list(reversed(made))
    assert page2["next_cursor"] is None
    await wait_status(running, made[0], {"succeeded"})
    status, ok = await running.get("/v1/jobs?status=succeeded&kind=testing.noop")
    assert made[0] in {j["id"] for j in ok["jobs"]}

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"kind": "core.nope"}, 400, "unknown_kind"),
        ({"kind": "nothing.here", "params": {}}, 400, "unknown_kind"),
        ({"kind": "testing.echo", "params": {"sleep_s": -1}}, 400, "invalid_params"),
        ({"kind": "core.transcribe_files", "params": {}}, 400, "invalid_params"),
        ({"kind": "transcription.capture", "params": {"session_id": "x", "source": "y"}}, 400, "kind_not_allowed"),
        ({"kind": "testing.echo", "extra": 1}, 400, "invalid_request"),
        ({"kind": "testing.echo", "priority": 99999}, 400, "invalid_request"),
    ]
    for payload, code, name in cases:
        status, err = await running.post("/v1/jobs", payload)
        assert (status, err["error"]["code"]) == (code, name), (payload, err)
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/result", "/v1/jobs/nope/events"):
        status, err = await running.get(path)
        assert status == 404 and err["error"]["code"] == "job_not_found", path
    assert (await running.delete("/v1/jobs/nope"))[0] == 404
    assert (await running.post("/v1/jobs/nope/requeue", None))[0] == 404
    assert (await running.get("/v1/jobs?cursor=bogus"))[1]["error"]["code"] == "invalid_cursor"
    assert (await running.get("/v1/jobs?status=sleeping"))[0] == 400
    assert (await running.get("/v1/jobs/bad%20id"))[0] == 400


async def test_auth_and_scopes(running: Running) -> None:
    tokens: TokenStore = running.service.tokens
    reader, _ = await tokens.create(["jobs:read"])
    writer, _ = await tokens.create(["jobs:write"])
    sessions, _ = await tokens.create(["sessions:read", "sessions:write"])
    status, job = await running.post("/v1/jobs", {"kind": "testing.noop"}, token=writer)
    assert status == 202
    for path in ("/v1/plugins", "/v1/jobs", f"/v1/jobs/{job['id']}"):
        async with running.http.get(running.url(path)) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        assert (await running.get(path, token="kp_unknown"))[0] == 401
        assert (await running.get(path, token=sessions))[0] == 403
        assert (await running.get(path, token=reader))[0] == 200
    status, err = await running.post("/v1/jobs", {"kind": "testing.noop"}, token=reader)
    assert status == 403 and "jobs:write" in err["error"]["message"]
    assert (await running.delete(f"/v1/jobs/{job['id']}", token=reader))[0] == 403
    assert (await running.post(f"/v1/jobs/{job['id']}/requeue", None, token=reader))[0] == 403
    assert (await running.get("/v1/jobs", token=writer))[0] == 403


def _plugin_with_routes() -> Plugin:
    p = Plugin("routed", "0.1", description="a plugin with HTTP routes")

    @p.routes.get("/status")
    async def status(request: web.Request) -> web.StreamResponse:
        return web.json_response({"plugin": "routed", "query": dict(request.query)})

    @p.routes.post("/boom")
    async def boom(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("a bug in the plugin")

    return p


async def test_plugin_routes_are_mounted_behind_auth(make_service: Factory, tmp_path: Path) -> None:
    registry = load_plugins(installed=False)
    registry.add(_plugin_with_routes())
    async with make_service(registry=registry) as r:
        status, out = await r.get("/v1/plugins")
        routed = next(p for p in out["plugins"] if p["name"] == "routed")
        assert routed["has_routes"] and routed["routes"] == "/v1/plugins/routed/"
        status, body = await r.get("/v1/plugins/routed/status?x=1")
        assert status == 200 and body == {"plugin": "routed", "query": {"x": "1"}}
        async with r.http.get(r.url("/v1/plugins/routed/status")) as resp:
            assert resp.status == 401
        reader, _ = await r.service.tokens.create(["jobs:read"])
        assert (await r.get("/v1/plugins/routed/status", token=reader))[0] == 200
        assert (await r.post("/v1/plugins/routed/boom", {}, token=reader))[0] == 403
        status, err = await r.post("/v1/plugins/routed/boom", {})
        assert status == 500 and err == {
            "error": {"code": "internal_error", "message": "internal error; the service log has the details"}
        }
        status, doc = await r.get("/openapi.json")
        assert "/v1/jobs/{id}/events" in doc["paths"] and "/v1/plugins" in doc["paths"]
        assert doc["paths"]["/v1/jobs"]["post"]["x-scope"] == "jobs:write"
