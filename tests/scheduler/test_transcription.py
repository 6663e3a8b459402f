"""The transcription jobs in one process on the memory broker: a session end to end, and a
duplicate ASR delivery that must not duplicate a seq."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from couchpotato.records import EndEvent, SessionEvent, TranscriptEvent
from couchpotato.testing import wer
from couchpotato.testing.audit import assert_no_word_lost
from katopotato.blobs import FileBlobStore
from katopotato.broker import MemoryBroker
from katopotato.errors import InvalidParams
from katopotato.jobs import JobStatus
from katopotato.plugin_host import load_plugins
from katopotato.scheduler import Scheduler
from katopotato.transcription import ASR_KIND, start_session, transcript_events
from katopotato.worker import Worker

from ..conftest import requires_media_tools

pytestmark = [pytest.mark.timeout(120), requires_media_tools]


async def test_a_session_in_one_process_and_a_duplicate_delivery(
    short_speech: tuple[Path, str], tmp_path: Path
) -> None:
    path, text = short_speech
    registry = load_plugins(installed=False, settings={"transcription": {"allow_local": True}})
    async with MemoryBroker() as broker:
        sched = Scheduler(broker, registry)
        with pytest.raises(InvalidParams, match="segmenter"):
            await start_session(sched, "s1", str(path), segmenter={"max_segment_s": 99})
        async with Worker(broker, registry, blobs=FileBlobStore(tmp_path), kinds=["capture", "asr"], concurrency=3):
            await start_session(sched, "s1", str(path))
            async with asyncio.timeout(90):
                events = [ev async for _id, ev in transcript_events(broker, "s1")]
            assert isinstance(events[0], SessionEvent) and isinstance(events[-1], EndEvent)
            segments = [e for e in events if isinstance(e, TranscriptEvent)]
            assert [e.seq for e in segments] == list(range(events[-1].segments))
            assert wer(text, " ".join(e.text for e in segments)) <= 0.15
            assert_no_word_lost(text, segments)
            # the same segment delivered again (a retry after an ack was lost): nothing new is committed
            first = next(j for j in await sched.list(kind=ASR_KIND) if j.params["segment"]["seq"] == 0)
            again = await sched.enqueue(ASR_KIND, first.params)
            done = await sched.wait(again.id, timeout_s=30)
            assert done.status is JobStatus.SUCCEEDED
            assert (await sched.result(again.id))["duplicate"] is True
        after = [ev async for _id, ev in transcript_events(broker, "s1", follow=False)]
        assert after == events


async def test_a_capture_that_fails_on_every_try_ends_the_session_with_its_error(
    short_speech: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture job that keeps failing is retried; when no try is left the session still ends
    (an ``end`` event with reason ``error`` and the cause) and what was captured is committed."""
    from katopotato.capture import SessionCapture

    path, _text = short_speech
    emitted = 0
    original = SessionCapture._emit

    async def emit_once_then_fail(self: SessionCapture, seg: object) -> None:
        nonlocal emitted
        if emitted >= 1:
            raise RuntimeError("test: the capture has a bug")
        emitted += 1
        await original(self, seg)  # type: ignore[arg-type]

    monkeypatch.setattr(SessionCapture, "_emit", emit_once_then_fail)
    registry = load_plugins(installed=False, settings={"transcription": {"allow_local": True}})
    async with MemoryBroker() as broker:
        sched = Scheduler(broker, registry)
        async with Worker(broker, registry, blobs=FileBlobStore(tmp_path), kinds=["capture", "asr"], concurrency=3,
                          retry_backoff_base_s=0.05):  # fmt: skip
            await start_session(sched, "s2", str(path))
            async with asyncio.timeout(90):
                events = [ev async for _id, ev in transcript_events(broker, "s2")]
    end = events[-1]
    assert isinstance(end, EndEvent) and end.reason == "error", end
    assert end.error.startswith("capture failed on its last try (5 of 5): RuntimeError: test: the capture has a bug")
    segments = [e for e in events if isinstance(e, TranscriptEvent)]
    assert [e.seq for e in segments] == [0] and end.segments == 1, "what was captured is committed"
