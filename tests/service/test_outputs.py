"""Outputs on sessions (docsweb sinks wired into the service): a webhook delivered to a receiver that
checks the signature itself, a file in the blob store, a Google Doc on the local Google stand-in
driven by the real client library; validation; adding an output later; restarting the service
resumes every sink from its stored cursor with nothing delivered twice."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from docsweb import DocsWebSettings
from docsweb.testing import FakeGoogle

from .conftest import Running

pytestmark = pytest.mark.timeout(240)

Factory = Callable[..., contextlib.AbstractAsyncContextManager[Running]]
SECRET = "whsec_" + "s3cr3t" * 4


@dataclass
class Receiver:
    """A webhook receiver: verifies every signature with hmac, keeps what it got in order."""

    url: str = ""
    got: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    down: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503)
        body = await request.read()
        ts = request.headers["X-CouchPotato-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, request.headers["X-CouchPotato-Signature"])
        if not ok or abs(time.time() - int(ts)) > 300:
            self.bad_signatures += 1
            return web.Response(status=401)
        doc = json.loads(body)
        assert request.headers["X-CouchPotato-Event-Id"] == doc["event_id"]
        self.got.append(doc)
        return web.Response(status=204)

    @property
    def event_ids(self) -> list[int]:
        return [int(d["event_id"]) for d in self.got]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle() as g:
        yield g


def docs_settings(google: FakeGoogle, folder: Path) -> DocsWebSettings:
    return DocsWebSettings(
        google_credentials=google.service_account_file(folder),
        docs_endpoint=google.docs_endpoint,
        drive_endpoint=google.drive_endpoint,
    )


async def wait_outputs_done(r: Running, sid: str, within_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status, s = await r.get(f"/v1/sessions/{sid}")
        assert status == 200
        if s["status"] not in ("starting", "running", "stopping") and all(o["status"] == "done" for o in s["outputs"]):
            return dict(s)
        await asyncio.sleep(0.25)
    raise AssertionError(f"the outputs of {sid} did not finish: {s['outputs']}")


async def transcript_events(r: Running, sid: str) -> list[tuple[int, dict[str, Any]]]:
    """The session's log as SSE gives it: (event id, event), transcript events only."""
    _, events = await r.sse(sid)
    return [(i, e) for i, e in events if e["type"] in ("session", "segment", "gap", "end")]


async def test_webhook_file_and_gdoc_outputs_of_a_session(
    make_service: Factory, receiver: Receiver, google: FakeGoogle, speech_url: str, tmp_path: Path
) -> None:
    async with make_service(docsweb=docs_settings(google, tmp_path)) as r:
        outputs = [
            {"type": "webhook", "url": receiver.url, "secret": SECRET, "id": "hook"},
            {"type": "file", "format": "srt"},
            {"type": "gdoc", "title": "Council, live", "share_with": ["press@example.org"]},
        ]
        status, s = await r.post("/v1/sessions", {"url": speech_url, "title": "Council", "outputs": outputs})
        assert status == 201, s
        assert [o["type"] for o in s["outputs"]] == ["webhook", "file", "gdoc"] and s["outputs"][0]["id"] == "hook"
        assert SECRET not in json.dumps(s), "a secret is never echoed"
        done = await wait_outputs_done(r, s["id"])
        by_type = {o["type"]: o for o in done["outputs"]}
        assert SECRET not in json.dumps(done)

        events = await transcript_events(r, s["id"])
        assert events[-1][1]["type"] == "end" and any(e["type"] == "segment" for _, e in events)
        # the webhook: every transcript event once, in order, signed, with the log's event ids
        assert receiver.bad_signatures == 0
        assert receiver.event_ids == [i for i, _ in events]
        assert [d["event"] for d in receiver.got] == [e for _, e in events]
        assert all(d["session_id"] == s["id"] for d in receiver.got)
        hook = by_type["webhook"]
        assert hook["target"] == receiver.url and hook["delivered"] == len(events)
        assert hook["cursor"] == str(events[-1][0]) and hook["spec"]["secret"] != SECRET

        # the file: what the transcript export gives, in the blob store
        file_out = by_type["file"]
        assert file_out["target"] == f"transcripts/{s['id']}/{file_out['id']}.srt"
        written = (await r.service.blobs.get(file_out["target"])).decode()
        status, export = await r.get(f"/v1/sessions/{s['id']}/transcript?format=srt")
        assert written == export and "-->" in written

        # the Google Doc: a heading, then one paragraph per segment
        doc = by_type["gdoc"]
        assert doc["target"].startswith("https://docs.google.com/document/d/")
        doc_id = doc["target"].split("/d/")[1].split("/")[0]
        paragraphs = [p.text for p in google.paragraphs(doc_id)]
        assert paragraphs[0] == "Council, live"
        assert "library" in " ".join(paragraphs).lower()
        status, listed = await r.get(f"/v1/sessions/{s['id']}/outputs")
        assert status == 200 and [o["id"] for o in listed["outputs"]] == [o["id"] for o in done["outputs"]]


async def test_outputs_are_checked_before_anything_is_created(running: Running, speech_url: str) -> None:
    cases: list[tuple[Any, int, str]] = [
        ([{"type": "webhook", "url": "https://hooks.example.org/x", "secret": "short"}], 422, "invalid_outputs"),
        ([{"type": "telegram"}], 422, "invalid_outputs"),
        ("not a list", 422, "invalid_outputs"),
        (
            [{"type": "file", "format": "srt", "id": "a"}, {"type": "file", "format": "vtt", "id": "a"}],
            422,
            "invalid_outputs",
        ),
        ([{"type": "file", "format": "docx"}], 422, "invalid_outputs"),
        ([{"type": "gdoc"}], 400, "sink_refused"),  # this service has no Google credentials
        ([{"type": "webhook", "url": "http://10.1.2.3/hook", "secret": SECRET}], 400, "sink_refused"),
        ([{"type": "webhook", "url": "http://169.254.169.254/latest", "secret": SECRET}], 400, "sink_refused"),
    ]
    for outputs, code, name in cases:
        status, err = await running.post("/v1/sessions", {"url": speech_url, "outputs": outputs})
        assert (status, err["error"]["code"]) == (code, name), (outputs, err)
    status, listed = await running.get("/v1/sessions")
    assert listed["sessions"] == [], "a refused output creates no session"


async def test_an_output_added_to_a_finished_session_gets_all_of_it(
    running: Running, receiver: Receiver, speech_url: str
) -> None:
    status, s = await running.post("/v1/sessions", {"url": speech_url})
    await running.sse(s["id"])  # until the end
    hook = {"type": "webhook", "url": receiver.url, "secret": SECRET}
    status, added = await running.post(f"/v1/sessions/{s['id']}/outputs", hook)
    assert status == 201 and added["type"] == "webhook" and added["id"].startswith("webhook-")
    assert SECRET not in json.dumps(added)
    status, err = await running.post(f"/v1/sessions/{s['id']}/outputs", hook)
    assert status == 409 and err["error"]["code"] == "output_exists"
    status, err = await running.post(f"/v1/sessions/{s['id']}/outputs", {**hook, "secret": "x"})
    assert status == 422 and err["error"]["code"] == "invalid_outputs"
    status, err = await running.post("/v1/sessions/nope/outputs", hook)
    assert status == 404 and err["error"]["code"] == "session_not_found"
    done = await wait_outputs_done(running, s["id"])
    events = await transcript_events(running, s["id"])
    assert receiver.event_ids == [i for i, _ in events]
    assert done["outputs"][0]["status"] == "done"
    reader, _ = await running.service.tokens.create(["sessions:read"])
    assert (await running.post(f"/v1/sessions/{s['id']}/outputs", hook, token=reader))[0] == 403


async def test_outputs_resume_after_a_restart_without_duplicates(
    make_service: Factory, receiver: Receiver, speech_url: str
) -> None:
    outputs = [
        {"type": "webhook", "url": receiver.url, "secret": SECRET, "id": "hook"},
        {"type": "file", "format": "text"},
    ]
    async with make_service() as first:
        status, s = await first.post("/v1/sessions", {"url": speech_url, "realtime": True, "outputs": outputs})
        assert status == 201
        deadline = time.monotonic() + 60
        while not any(d["event"]["type"] == "segment" for d in receiver.got):
            assert time.monotonic() < deadline, "no segment reached the webhook"
            await asyncio.sleep(0.1)
        receiver.down = True  # what follows waits for the receiver, past the restart
    got_before = len(receiver.got)
    receiver.down = False
    async with make_service() as second:
        done = await wait_outputs_done(second, s["id"])
        assert done["status"] == "interrupted"  # the memory broker's session ended with the first process
        events = await transcript_events(second, s["id"])
        assert receiver.event_ids == [i for i, _ in events], "each event once, in order, across the restart"
        assert len(receiver.got) > got_before and receiver.bad_signatures == 0
        file_out = next(o for o in done["outputs"] if o["type"] == "file")
        written = (await second.service.blobs.get(file_out["target"])).decode()
        status, export = await second.get(f"/v1/sessions/{s['id']}/transcript?format=txt")
        assert written == export
