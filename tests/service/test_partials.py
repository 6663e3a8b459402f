"""Interim text through the service: ``?partials=1`` on a session's SSE stream, drafted by the
capture instance while somebody follows it, never stored (real ASR, speech served over HTTP)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from couchpotato.testing import wer

from .conftest import SPEECH_TEXT, Running
from .test_api import start, wait_ended

pytestmark = pytest.mark.timeout(180)


async def raw_sse(r: Running, path: str) -> list[tuple[int | None, dict[str, Any]]]:
    """Every event of an SSE stream until it ends, with its id (None: an event without one)."""
    out: list[tuple[int | None, dict[str, Any]]] = []
    headers = {**r.auth(), "Accept": "text/event-stream"}
    async with r.http.get(r.url(path), headers=headers, timeout=aiohttp.ClientTimeout(total=150)) as resp:
        assert resp.status == 200
        event_id: int | None = None
        data: list[str] = []
        async for raw in resp.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                out.append((event_id, json.loads("\n".join(data))))
                event_id, data = None, []
    return out


async def test_partials_come_before_their_segment_and_are_never_stored(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url, mode="direct", realtime=True)
    events = await raw_sse(running, f"/v1/sessions/{s['id']}/events?partials=1")
    partials = [(i, e) for i, e in events if e["type"] == "partial"]
    durable = [(i, e) for i, e in events if e["type"] != "partial"]
    assert partials, "a realtime session followed with partials=1 gets interim text"
    assert all(i is None for i, _ in partials), "a partial carries no id: a resumed stream never replays one"
    assert all(i is not None for i, _ in durable)
    assert [i for i, _ in durable] == list(range(1, len(durable) + 1)), "the durable events keep their ids"
    assert durable[-1][1]["type"] == "end"

    committed = -1
    revisions: dict[int, int] = {}
    for _, e in events:
        if e["type"] in ("segment", "gap"):
            committed = e["seq"]
        elif e["type"] == "partial":
            assert e["seq"] > committed, "no partial of a seq already committed"
            assert set(e) >= {"seq", "start", "end", "text", "words", "emitted_at", "revision", "stable"}
            assert e["revision"] > revisions.get(e["seq"], 0), "revision grows within a seq"
            revisions[e["seq"]] = e["revision"]
            assert 0 <= e["stable"] <= len(e["words"])
    segments = {e["seq"]: e for _, e in durable if e["type"] == "segment"}
    assert set(revisions) <= set(segments) | {max(segments) + 1}, "a partial's seq is the segment it becomes"
    last = {e["seq"]: e["text"] for _, e in partials if e["seq"] in segments}  # the newest draft of each seq
    final = " ".join(segments[seq]["text"] for seq in last)
    assert wer(final, " ".join(last.values())) < 0.6, "a segment's last draft says most of its words"
    assert wer(SPEECH_TEXT, " ".join(e["text"] for e in segments.values())) < 0.25

    await wait_ended(running, s["id"])
    stored = await running.service.events.all(s["id"])
    assert stored and not [e for e in stored if e.type == "partial"], "partials never reach the durable log"
    status, body = await running.get(f"/v1/sessions/{s['id']}/transcript?format=jsonl")
    assert status == 200 and '"partial"' not in body


async def test_without_partials_nobody_drafts(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url, mode="direct", realtime=True)
    events = await raw_sse(running, f"/v1/sessions/{s['id']}/events")
    assert events[-1][1]["type"] == "end"
    assert not [e for _, e in events if e["type"] == "partial"]
    assert await running.service.broker.kv_get(f"partials-wanted:{s['id']}") is None
