"""Fixtures of the sink tests: the local Google stand-in driven by the real client library, a
webhook receiver that checks signatures on its own, and transcripts made by the real pipeline.

* ``google`` / ``settings``: ``FakeGoogle`` on 127.0.0.1 and ``DocsWebSettings`` pointing at it with
  a service-account file whose key it trusts (``token_uri`` is the fake's token endpoint).
* ``recorded``: the events of a two-paragraph programme transcribed by ``couchpotato.Pipeline``
  (real ffmpeg, the real tiny.en model), once per run, replayed into a broker stream by ``replay``.
* ``Receiver``: an aiohttp webhook receiver that verifies ``X-CouchPotato-Signature`` with hmac
  itself, dedupes by ``event_id``, and can be down or answer 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from couchpotato.asr import FasterWhisperEngine
from couchpotato.capture import CaptureOptions, capture_events
from couchpotato.pipeline import PipelineOptions
from couchpotato.records import Event, TranscriptEvent
from couchpotato.testing import Programme, build_programme
from couchpotato.urlguard import UrlGuard
from docsweb import DocsWebSettings
from docsweb.testing import FakeGoogle
from katopotato.broker import Broker, MemoryBroker
from katopotato.keys import transcript_stream
from katopotato.transcription import transcript_events

from ..conftest import _missing

Source = Callable[[str | None], AsyncIterator[tuple[str, Event]]]


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle() as g:
        yield g


@pytest.fixture
def settings(google: FakeGoogle, tmp_path: Path) -> DocsWebSettings:
    return DocsWebSettings(
        google_credentials=google.service_account_file(tmp_path),
        docs_endpoint=google.docs_endpoint,
        drive_endpoint=google.drive_endpoint,
        console_url="https://couchpotato.example.org",
    )


@pytest.fixture(scope="session")
def engine() -> FasterWhisperEngine:
    return FasterWhisperEngine("tiny.en", workers=1)


@pytest.fixture(scope="session")
def two_paragraphs(tmp_path_factory: pytest.TempPathFactory) -> Programme:
    """Two corpus paragraphs in two voices: about half a minute."""
    if _missing():
        pytest.skip(f"needs {', '.join(_missing())}")
    return build_programme(tmp_path_factory.mktemp("docsweb") / "programme", 2)


async def transcribe(
    path: Path, engine: FasterWhisperEngine, session_id: str, *, realtime: bool
) -> AsyncIterator[Event]:
    options = PipelineOptions(session_id=session_id, asr_workers=1)
    async for event in capture_events(str(path), engine, UrlGuard(), CaptureOptions(realtime=realtime), options):
        yield event


@pytest.fixture(scope="session")
def recorded(two_paragraphs: Programme, engine: FasterWhisperEngine) -> list[Event]:
    """The programme's transcript as the real pipeline commits it (as fast as it can)."""

    async def run() -> list[Event]:
        return [e async for e in transcribe(two_paragraphs.path, engine, "recorded", realtime=False)]

    events = asyncio.run(run())
    assert sum(isinstance(e, TranscriptEvent) for e in events) >= 5, "a transcript worth batching"
    return events


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    async with MemoryBroker() as b:
        yield b


async def replay(broker: Broker, session_id: str, events: Sequence[Event], pause_s: float = 0.0) -> list[str]:
    """Append events to the session's transcript stream, as the resequencer does; their ids."""
    ids: list[str] = []
    for e in events:
        ids += await broker.append(transcript_stream(session_id), [e.to_dict()])
        if pause_s:
            await asyncio.sleep(pause_s)
    return ids


def stream_source(broker: Broker, session_id: str) -> Source:
    """The runner's source: the broker's transcript stream from a cursor."""

    def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
        return transcript_events(broker, session_id, after=after or "0", block_s=0.2)

    return source


def segment_lines(events: Sequence[Event]) -> list[str]:
    """What the doc shows for each segment, without the timestamp."""
    return [" ".join(e.text.split()) for e in events if isinstance(e, TranscriptEvent) and e.text.strip()]


def doc_segments(google: FakeGoogle, document_id: str) -> list[str]:
    """The doc's segment paragraphs (``[hh:mm:ss] text``) without the timestamp."""
    return [
        p.text[11:]
        for p in google.paragraphs(document_id)
        if p.text[:1] == "[" and p.text[9:11] == "] " and not p.italic
    ]


# --- a webhook receiver -------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1:``port`` that checks signatures with hmac itself."""

    secret: str
    port: int
    fail_next: int = 0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)
    bad_signatures: int = 0
    duplicates: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/couchpotato?tenant=1"

    def verify(self, body: bytes, timestamp: str, signature: str) -> bool:
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        return hmac.compare_digest(expected, signature) and abs(time.time() - int(timestamp)) < 300

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts.append(time.time())
        if not self.verify(
            body,
            request.headers.get("X-CouchPotato-Timestamp", "0"),
            request.headers.get("X-CouchPotato-Signature", ""),
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=500)
        doc = json.loads(body)
        entries = doc["events"] if "events" in doc else [{"event_id": doc["event_id"], "event": doc["event"]}]
        seen = {i for i, _ in self.received}
        for entry in entries:
            if entry["event_id"] in seen:
                self.duplicates += 1
                continue
            self.received.append((entry["event_id"], entry["event"]))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/couchpotato", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def receiver(unused_tcp_port: int) -> AsyncIterator[Receiver]:
    r = Receiver("whsec_" + "k" * 26, unused_tcp_port)
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
def local_guard() -> UrlGuard:
    return UrlGuard.from_allowlist("127.0.0.0/8")
