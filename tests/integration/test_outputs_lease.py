"""Outputs with several API processes on one database and one Redis: the broker lease lets exactly one
of them run a session's sinks, and when it goes away another one takes over from the stored cursor,
delivering nothing twice. (Two ``Outputs`` in one test process stand for two API processes: they
share nothing but the database file and Redis, as processes would.)"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from couchpotato.records import EndEvent, SessionEvent, TranscriptEvent, Word
from couchpotato.urlguard import UrlGuard
from docsweb import DocsWebSettings, parse_outputs, storage_dict
from katopotato.broker.redis import RedisBroker
from katopotato.db import Database
from katopotato.events import EventLog
from katopotato.keys import outputs_lease_key
from katopotato.outputs import Outputs
from katopotato.search import open_search
from katopotato.sessions import SessionSpec, SessionStore

pytestmark = pytest.mark.timeout(60)
SECRET = "whsec_lease_test_secret_0123"


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[int]]]:
    got: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        ts = request.headers["X-CouchPotato-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, request.headers["X-CouchPotato-Signature"])
        got.append(int(json.loads(body)["event_id"]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", got
    finally:
        await runner.cleanup()


async def wait_for(check: Any, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_one_process_runs_a_sessions_sinks_and_another_takes_over(
    tmp_path: Path, redis_broker_url: str, hook: tuple[str, list[int]]
) -> None:
    url, got = hook
    async with contextlib.AsyncExitStack() as stack:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'couchpotato.db'}")
        await db.start()
        stack.push_async_callback(db.close)
        events = EventLog(db, poll_interval_s=0.2)
        store = SessionStore(db, events, open_search("sqlite://", db))
        [spec] = parse_outputs([{"type": "webhook", "url": url, "secret": SECRET}])
        session = SessionSpec(url="https://example.org/a.mp3", outputs=(storage_dict(spec),))
        await store.create(session, source_kind="http", source_reason="test")
        sid = session.id

        def outputs(owner: str) -> Outputs:
            return Outputs(
                db, events, broker, None, settings=DocsWebSettings(), guard=UrlGuard.from_allowlist("127.0.0.0/8"),
                owner=owner, scan_interval_s=0.2, lease_ttl_s=1.0,
            )  # fmt: skip

        broker = await stack.enter_async_context(RedisBroker(redis_broker_url))
        a, b = outputs("api-a"), outputs("api-b")
        await a.start()
        await b.start()
        stack.push_async_callback(b.close)
        await wait_for(lambda: bool(a.running or b.running))
        await asyncio.sleep(0.6)  # several scans of both
        assert len(a.running + b.running) == 1, "exactly one process runs the session's sinks"
        holder, other = (a, b) if a.running else (b, a)
        lease = await broker.kv_get(outputs_lease_key(sid))
        assert lease is not None and lease.value["owner"] == holder.owner

        await store.record(sid, SessionEvent(time.time(), sid, "https://example.org/a.mp3", "http"))
        words = (Word(0.0, 0.4, " hello", 0.9),)
        await store.record(sid, TranscriptEvent(sid, 0, 0.0, 0.4, " hello", words, time.time()))
        await wait_for(lambda: got == [2, 3])  # event 1 is the "starting" status: not a transcript event
        await holder.close()  # that process goes away; its lease is released
        await wait_for(lambda: bool(other.running), within_s=5)

        await store.record(sid, TranscriptEvent(sid, 1, 0.5, 0.9, " again", words, time.time()))
        await store.finish(sid, "completed", EndEvent("end_of_source", "", 2))
        ids = [e.id for e in await events.all(sid) if e.type in ("session", "segment", "gap", "end")]
        await wait_for(lambda: got == ids)
        assert got == sorted(set(got)), "nothing delivered twice across the hand-over"
        views = await other.describe([sid])
        assert views[sid][0]["status"] == "done" and views[sid][0]["delivered"] == len(ids)
        await wait_for(lambda: not other.running)  # every sink is done: the lease is given up
        lease = await broker.kv_get(outputs_lease_key(sid))
        assert lease is None or lease.value["owner"] == ""
