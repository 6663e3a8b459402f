"""The HTTP API on a real port with the real ASR model: sessions, SSE, transcripts, search, auth,
errors. Sessions transcribe generated speech served over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import wave
from collections.abc import Callable
from typing import Any

import pytest

from couchpotato.testing import wer
from katopotato.auth import TokenStore

from .conftest import BREATHLESS_TEXT, SPEECH_TEXT, Running

pytestmark = pytest.mark.timeout(180)

Factory = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


async def start(r: Running, url: str, **body: Any) -> dict[str, Any]:
    status, out = await r.post("/v1/sessions", {"url": url, **body})
    assert status == 201, out
    return dict(out)


async def wait_ended(r: Running, sid: str, within_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status, s = await r.get(f"/v1/sessions/{sid}")
        assert status == 200
        if s["status"] not in ("starting", "running", "stopping"):
            return dict(s)
        await asyncio.sleep(0.2)
    raise AssertionError(f"session {sid} did not end")


def seqs(events: list[tuple[int, dict[str, Any]]]) -> list[int]:
    return [e["seq"] for _, e in events if e["type"] in ("segment", "gap")]


async def test_a_session_from_post_to_search(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url, title="Council meeting", vocabulary=["council"])
    assert s["status"] == "starting" and s["source"]["kind"] == "http" and s["title"] == "Council meeting"
    assert type(running.service.runner).__name__ == "DistributedRunner", "the default path runs on the scheduler"
    status, job = await running.get(s["links"]["job"])
    assert status == 200 and job["kind"] == "transcription.capture" and job["params"]["session_id"] == s["id"]
    assert isinstance(s["created_at"], float) and s["links"]["events"] == f"/v1/sessions/{s['id']}/events"

    status, events = await running.sse(s["id"])
    assert status == 200
    ids = [i for i, _ in events]
    assert ids == list(range(1, len(ids) + 1)), "event ids count up from 1 with no hole"
    kinds = [e["type"] for _, e in events]
    assert kinds[0] == "status" and events[0][1]["status"] == "starting"
    assert kinds[-1] == "end" and events[-1][1]["reason"] == "end_of_source"
    assert "session" in kinds and events[-2][1] == {**events[-2][1], "type": "status", "status": "completed"}
    assert seqs(events) == list(range(len(seqs(events))))
    segments = [e for _, e in events if e["type"] == "segment"]
    for e in segments:
        assert set(e) >= {"seq", "start", "end", "text", "words", "emitted_at"}
    heard = " ".join(e["text"] for e in segments)
    assert wer(SPEECH_TEXT, heard) < 0.25, heard

    done = await wait_ended(running, s["id"])
    assert done["status"] == "completed" and done["health"] == "ended"
    assert done["segments"] == len(segments) and done["committed_seq"] == seqs(events)[-1]
    assert done["duration_s"] > 5 and done["ended_at"] >= done["started_at"] >= done["created_at"]
    assert done["last_event_id"] == ids[-1]

    status, found = await running.get("/v1/search?q=library")
    assert status == 200 and found["next_cursor"] is None
    hit = next(h for h in found["hits"] if h["session"] == s["id"])
    assert hit["title"] == "Council meeting" and "<mark>" in hit["snippet"].lower()
    assert hit["end"] > hit["start"] >= 0
    assert hit["link"] == f"/#/sessions/{s['id']}?t={hit['start']:.2f}"


async def test_last_event_id_resumes_exactly_mid_stream_and_after_the_end(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url, mode="direct", realtime=True)
    status, first = await running.sse(s["id"], limit=4)
    assert status == 200 and len(first) == 4
    cut = first[-1][0]
    status, rest = await running.sse(s["id"], last_event_id=cut)
    assert status == 200
    assert [i for i, _ in first + rest] == list(range(1, rest[-1][0] + 1)), "no loss, no repeat"
    assert rest[-1][1]["type"] == "end"

    status, everything = await running.sse(s["id"])  # a client arriving after the end
    assert [e for _, e in everything] == [e for _, e in first + rest]
    status, tail = await running.sse(s["id"], last_event_id=rest[-2][0])
    assert status == 200 and [e for _, e in tail] == [rest[-1][1]]
    async with running.http.get(
        running.url(f"/v1/sessions/{s['id']}/events"), headers={**running.auth(), "Last-Event-ID": str(rest[-1][0])}
    ) as r:
        assert r.status == 204  # nothing follows: EventSource stops reconnecting
    async with running.http.get(
        running.url(f"/v1/sessions/{s['id']}/events?last_event_id={cut}"), headers=running.auth()
    ) as r:
        assert r.status == 200 and "id: " in await r.text()


async def test_a_low_latency_session_cuts_short_segments(running: Running, media_base: str) -> None:
    url = f"{media_base}/breathless.wav"

    async def spans(latency: str) -> list[float]:
        s = await start(running, url, latency=latency)
        assert s["latency"] == latency
        _, events = await running.sse(s["id"])
        segments = [e for _, e in events if e["type"] == "segment"]
        assert wer(BREATHLESS_TEXT, " ".join(e["text"] for e in segments)) < 0.25, segments
        done = await wait_ended(running, s["id"])
        assert done["status"] == "completed" and done["latency"] == latency
        return [e["end"] - e["start"] for e in segments]

    # efficient waits for a pause up to 9 s; balanced cuts at most 4 s of owned audio, low 3 s (a word
    # straddling the cut may reach a little past it)
    assert max(await spans("efficient")) > 5.0
    assert max(await spans("low")) <= 3.5
    status, err = await running.post("/v1/sessions", {"url": url, "latency": "instant"})
    assert status == 400 and err["error"]["code"] == "invalid_request"


async def test_transcript_exports(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url)
    await running.sse(s["id"])
    base = f"/v1/sessions/{s['id']}/transcript"
    status, j = await running.get(base)
    assert status == 200 and "library" in j["text"].lower() and j["session"]["id"] == s["id"]
    assert j["events"][0]["type"] == "session" and j["events"][-1]["type"] == "end"
    async with running.http.get(running.url(base + "?format=srt"), headers=running.auth()) as r:
        srt = await r.text()
        assert r.status == 200 and r.content_type == "application/x-subrip" and "-->" in srt and srt.startswith("1\n")
        assert f'filename="{s["id"]}.srt"' in r.headers["Content-Disposition"]
    status, vtt = await running.get(base + "?format=vtt")
    assert status == 200 and vtt.startswith("WEBVTT")
    status, txt = await running.get(base + "?format=txt")
    assert status == 200 and "library" in txt.lower()
    status, jsonl = await running.get(base + "?format=jsonl")
    lines = [json.loads(x) for x in jsonl.splitlines()]
    assert lines == j["events"]
    status, err = await running.get(base + "?format=docx")
    assert status == 400 and err["error"]["code"] == "invalid_request"


async def test_captured_audio_of_a_line(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url)
    await running.sse(s["id"])
    async with running.http.get(
        running.url(f"/v1/sessions/{s['id']}/audio?start=1&end=3.5"), headers=running.auth()
    ) as r:
        assert r.status == 200 and r.content_type == "audio/wav"
        with wave.open(io.BytesIO(await r.read())) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1
            assert abs(w.getnframes() - 2.5 * 16000) < 10
    s2 = await start(running, speech_url, keep_audio=False)
    await running.sse(s2["id"])
    status, err = await running.get(f"/v1/sessions/{s2['id']}/audio?start=0")
    assert status == 404 and err["error"]["code"] == "audio_not_kept"


async def test_stop_keeps_the_transcript(running: Running, speech_url: str) -> None:
    s = await start(running, speech_url, realtime=True)
    status, first = await running.sse(s["id"], limit=3)  # starting, session, running: audio flows
    assert [e["type"] for _, e in first] == ["status", "session", "status"]
    status, stopped = await running.delete(f"/v1/sessions/{s['id']}")
    assert status == 202 and stopped["status"] == "stopping"
    done = await wait_ended(running, s["id"], within_s=30)
    assert done["status"] == "stopped" and done["duration_s"] < 8
    status, events = await running.sse(s["id"])
    assert events[-1][1] == {"type": "end", "reason": "stopped", "segments": done["segments"]}
    status, again = await running.delete(f"/v1/sessions/{s['id']}")
    assert status == 200 and again["status"] == "stopped"
    status, _ = await running.get(f"/v1/sessions/{s['id']}/transcript")
    assert status == 200


async def test_health_follows_a_long_silence(running: Running, media_base: str) -> None:
    s = await start(running, f"{media_base}/pause.wav", realtime=True)
    seen: list[tuple[str, float | None]] = []

    async def poll() -> None:
        while True:
            _, now = await running.get(f"/v1/sessions/{s['id']}")
            seen.append((now["health"], now["silent_s"]))
            await asyncio.sleep(0.3)

    poller = asyncio.ensure_future(poll())
    try:
        _, events = await running.sse(s["id"])
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
    quiet = [q for health, q in seen if health == "silent"]
    assert quiet and all(q is not None and q >= 5.0 for q in quiet) and max(quiet) > min(quiet), seen
    assert all(q is None for health, q in seen if health != "silent"), seen
    running_events = [e for _, e in events if e["type"] == "status" and e["status"] == "running"]
    healths = [e["health"] for e in running_events]
    assert healths == ["ok", "silent", "ok"], healths
    assert running_events[1]["silent_s"] >= 5.0, running_events[1]  # the silence comes with its length
    assert "silent_s" not in running_events[0] and "silent_s" not in running_events[2]
    texts = [e["text"].lower() for _, e in events if e["type"] == "segment" and e["text"]]
    assert len(texts) == 2 and all("council" in t for t in texts), texts


async def test_listing_is_paged_and_filtered(running: Running, speech_url: str) -> None:
    made = [await start(running, speech_url, keep_audio=False) for _ in range(3)]
    for s in made:
        await running.sse(s["id"])
    bad = await running.post("/v1/sessions", {"url": speech_url.replace("speech.wav", "missing.wav")})
    assert bad[0] == 422 and bad[1]["error"]["code"] == "source_not_found"
    status, page1 = await running.get("/v1/sessions?limit=2")
    assert status == 200 and len(page1["sessions"]) == 2 and page1["next_cursor"]
    status, page2 = await running.get(f"/v1/sessions?limit=2&cursor={page1['next_cursor']}")
    ids = [x["id"] for x in page1["sessions"] + page2["sessions"]]
    assert ids == [s["id"] for s in reversed(made)] and page2["next_cursor"] is None
    status, completed = await running.get("/v1/sessions?status=completed")
    assert {x["id"] for x in completed["sessions"]} == set(ids)
    status, none = await running.get("/v1/sessions?status=failed")
    assert none["sessions"] == []
    status, err = await running.get("/v1/sessions?cursor=bogus")
    assert status == 400 and err["error"]["code"] == "invalid_cursor"


async def test_refused_and_unusable_sources(make_service: Factory, media_base: str) -> None:
    async with make_service(url_allowlist="") as r:  # no allowlist: loopback is refused
        status, err = await r.post("/v1/sessions", {"url": f"{media_base}/speech.wav"})
        assert status == 400 and err["error"]["code"] == "url_refused"
        for url in ("file:///etc/passwd", "/etc/passwd", "-", "http://169.254.169.254/latest/meta-data"):
            status, err = await r.post("/v1/sessions", {"url": url})
            assert status == 400 and err["error"]["code"] == "url_refused", (url, err)
        status, listed = await r.get("/v1/sessions")
        assert listed["sessions"] == [], "a refused URL creates no session"
    async with make_service() as r:
        status, err = await r.post("/v1/sessions", {"url": f"{media_base}/page.txt"})
        assert status == 422 and err["error"]["code"] == "not_media"
        status, err = await r.post("/v1/sessions", {"url": f"{media_base}/speech.wav", "language": "fr"})
        assert status == 422 and err["error"]["code"] == "unsupported_option"


async def test_auth_scopes_and_json_errors(running: Running, speech_url: str) -> None:
    tokens: TokenStore = running.service.tokens
    reader, _ = await tokens.create(["sessions:read"])
    searcher, _ = await tokens.create(["search"])
    writer, info = await tokens.create(["sessions:write"])

    async with running.http.get(running.url("/v1/sessions")) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["error"]["code"] == "unauthorized"
    assert (await running.get("/v1/sessions", token="kp_nope_nope"))[0] == 401
    async with running.http.get(running.url("/v1/sessions"), headers={"Authorization": "Basic abc"}) as r:
        assert r.status == 401
    assert (await running.get("/v1/sessions", token=reader))[0] == 200
    status, err = await running.get("/v1/search?q=x", token=reader)
    assert status == 403 and err["error"]["code"] == "forbidden" and "search" in err["error"]["message"]
    assert (await running.get("/v1/search?q=x", token=searcher))[0] == 200
    assert (await running.post("/v1/sessions", {"url": speech_url}, token=reader))[0] == 403
    assert (await running.get("/metrics", token=reader))[0] == 403
    assert (await running.get("/v1/tokens", token=writer))[0] == 403
    status, me = await running.get("/v1/whoami", token=writer)
    assert status == 200 and me["scopes"] == ["sessions:write"] and me["token_id"] == info.id
    assert await tokens.revoke(info.id)
    assert (await running.get("/v1/whoami", token=writer))[0] == 401

    status, err = await running.get("/v1/sessions/does-not-exist")
    assert status == 404 and err["error"]["code"] == "session_not_found"
    for path in ("/events", "/transcript", "/audio"):
        assert (await running.get(f"/v1/sessions/nope{path}"))[0] == 404
    assert (await running.delete("/v1/sessions/nope"))[0] == 404
    async with running.http.post(running.url("/v1/sessions"), data="{not json", headers=running.auth()) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    bodies: list[Any] = [{}, {"url": ""}, {"url": speech_url, "mode": "psychic"}, {"url": speech_url, "x": 1}, []]
    bodies += [{"url": speech_url, "no_audio_timeout_s": 0}, {"url": speech_url, "silence_timeout_s": -5}]
    for body in bodies:
        status, err = await running.post("/v1/sessions", body)
        assert status == 400 and set(err) == {"error"}, (body, err)
    async with running.http.put(running.url("/v1/sessions"), headers=running.auth()) as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
    async with running.http.get(running.url("/v1/nothing-here"), headers=running.auth()) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    async with running.http.post(running.url("/v1/sessions"), data=b"x" * 200_000, headers=running.auth()) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "payload_too_large"
    for q in ('""', "a*"):
        status, err = await running.get(f"/v1/search?q={q}")
        assert status == 400 and err["error"]["code"] == "invalid_query"
    status, err = await running.get("/v1/search?q=library&since=yesterday")
    assert status == 400
    status, err = await running.get("/v1/sessions?staus=failed")
    assert status == 400 and "staus" in err["error"]["message"]
    assert (await running.get("/v1/sessions?limit=1&limit=2"))[0] == 400
    assert (await running.get("/v1/whoami?x=1"))[0] == 400


async def test_tokens_api_and_admin_token_generation(running: Running) -> None:
    status, made = await running.post("/v1/tokens", {"scopes": ["search", "sessions:read"], "name": "ci"})
    assert status == 201 and made["token"].startswith("kp_") and made["scopes"] == ["sessions:read", "search"]
    assert (await running.get("/v1/search?q=x", token=made["token"]))[0] == 200
    status, listed = await running.get("/v1/tokens")
    assert [t["id"] for t in listed["tokens"]] == [made["id"]] and listed["tokens"][0]["token"] is None
    assert (await running.post("/v1/tokens", {"scopes": []}))[0] == 400
    assert (await running.post("/v1/tokens", {"scopes": ["root"]}))[0] == 400
    assert (await running.delete(f"/v1/tokens/{made['id']}"))[0] == 204
    assert (await running.delete(f"/v1/tokens/{made['id']}"))[0] == 404
    # the service was started with COUCHPOTATO_API_TOKEN: it never generates one
    assert await running.service.tokens.ensure_admin() is None


async def test_health_metrics_and_schema(running: Running, speech_url: str) -> None:
    async with running.http.get(running.url("/healthz")) as r:
        health = await r.json()
        assert r.status == 200 and health["status"] == "ok" and health["database"] == "sqlite"
    s = await start(running, speech_url)
    await running.sse(s["id"])
    status, text = await running.get("/metrics")
    assert status == 200
    assert 'katopotato_sessions{status="completed"} 1.0' in text
    assert 'katopotato_segments_total{type="segment"}' in text
    for name in ("katopotato_asr_seconds_total", "katopotato_realtime_factor", "katopotato_queue_depth"):
        assert name in text
    assert "katopotato_commit_latency_seconds_count 0.0" not in text
    assert "katopotato_event_lag_seconds_count" in text
    status, doc = await running.get("/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {"/v1/sessions", "/v1/sessions/{id}", "/v1/sessions/{id}/events", "/v1/search", "/healthz"} <= set(
        doc["paths"]
    )
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert "SessionOut" in doc["components"]["schemas"]
