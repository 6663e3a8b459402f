"""HotPotato through the API: ``POST /v1/sessions/{id}/swap`` on a running session replaces its capture
instance mid-stream; the decision and the outcome are session events (SSE), the swap's state is at
``GET /v1/sessions/{id}/swap`` and in the metrics; the transcript goes on in order with the same
words. Real FFmpeg, the tiny.en model, the embedded scheduler with the memory broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from couchpotato.testing import serve_directory, synthesize, wer
from couchpotato.testing.audit import assert_no_word_lost

from .conftest import Running

pytestmark = pytest.mark.timeout(240)

PROGRAMME = (
    "The committee met on Tuesday to discuss the new bridge over the river. "
    "Engineers said the old structure could carry traffic for two more years. "
    "Residents asked whether the bus routes would change during the works. "
    "The chair promised a public meeting in the spring before any decision. "
    "Finally the members thanked the staff of the library for their report."
)


@pytest.fixture(scope="module")
def programme_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("swap-media")
    synthesize(PROGRAMME, folder / "programme.wav")
    with serve_directory(folder, ranges=True) as url:  # a new instance seeks the file where the old one is
        yield f"{url}/programme.wav"


async def request_swap(r: Running, sid: str, within_s: float = 30) -> dict[str, Any]:
    """POST the swap as soon as the capture has audio (before that it is a 409 ``swap_refused``)."""
    deadline = time.monotonic() + within_s
    while True:
        status, out = await r.post(f"/v1/sessions/{sid}/swap", {"reason": "test: rolling the capture"})
        if status == 202:
            return dict(out)
        assert status == 409 and out["error"]["code"] == "swap_refused", out
        assert time.monotonic() < deadline, f"the swap was never accepted: {out}"
        await asyncio.sleep(0.3)


async def test_an_api_swap_mid_stream_keeps_the_transcript_whole(running: Running, programme_url: str) -> None:
    status, s = await running.post("/v1/sessions", {"url": programme_url, "realtime": True})
    assert status == 201, s
    sid = s["id"]

    swap = await request_swap(running, sid)
    assert swap["session_id"] == sid and swap["swap"]["trigger"] == "api"
    assert swap["swap"]["reason"] == "test: rolling the capture" and swap["capture"]["epoch"] == 0

    status, again = await running.post(f"/v1/sessions/{sid}/swap", {})
    assert status == 409 and again["error"]["code"] == "swap_refused", "one swap at a time"

    status, events = await running.sse(sid, within_s=150)
    assert status == 200
    kinds = [e["type"] for _, e in events]
    assert "swap_started" in kinds and "swap_completed" in kinds, kinds
    assert "swap_failed" not in kinds
    started = next(e for _, e in events if e["type"] == "swap_started")
    completed = next(e for _, e in events if e["type"] == "swap_completed")
    assert started["swap_id"] == completed["swap_id"] == swap["swap"]["id"]
    assert completed["epoch"] == 1 and started["reason"] == "test: rolling the capture"

    seqs = [e["seq"] for _, e in events if e["type"] in ("segment", "gap")]
    assert seqs == list(range(len(seqs))), "the transcript goes on with the next seq after the cut"
    assert "gap" not in kinds, "nothing lost at the swap"
    heard = " ".join(e["text"] for _, e in events if e["type"] == "segment")
    # what the swap must not do: lose or double words at its cut (the audit); the WER bound is
    # the suite's for tiny.en on espeak (a 60-word programme: one word is 1.7 points)
    assert_no_word_lost(PROGRAMME, [e for _, e in events if e["type"] == "segment"])
    assert wer(PROGRAMME, heard) < 0.25, heard
    assert kinds[-1] == "end" and events[-1][1]["reason"] == "end_of_source"

    status, state = await running.get(f"/v1/sessions/{sid}/swap")
    assert status == 200 and state["swap"]["phase"] == "completed" and state["capture"]["epoch"] == 1

    status, text = await running.get("/metrics")
    assert status == 200
    assert 'katopotato_swaps_total{event="swap_completed",trigger="api"} 1.0' in text

    status, ended = await running.post(f"/v1/sessions/{sid}/swap", {})
    assert status == 409 and ended["error"]["code"] == "swap_refused", "an ended session has nothing to swap"


async def test_swap_errors(running: Running) -> None:
    status, out = await running.post("/v1/sessions/nope/swap", {})
    assert status == 404 and out["error"]["code"] == "session_not_found"
    status, out = await running.get("/v1/sessions/nope/swap")
    assert status == 404 and out["error"]["code"] == "session_not_found"
    status, out = await running.post("/v1/sessions/nope/swap", {"reason": ""})
    assert status == 400 and out["error"]["code"] == "invalid_request", out
