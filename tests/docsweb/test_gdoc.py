"""The Google Docs sink, driven through the real google-api-python-client and google-auth over HTTP
against the local Docs/Drive/OAuth stand-in (``docsweb.testing.fake_google``)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from couchpotato.asr import FasterWhisperEngine
from couchpotato.records import EndEvent, Event, GapEvent, SessionEvent, TranscriptEvent, dumps
from couchpotato.testing import Programme
from couchpotato.urlguard import UrlGuard
from docsweb import (
    DocsWebSettings,
    MemoryCursorStore,
    SinkManager,
    SqliteCursorStore,
    parse_outputs,
    validate_outputs,
)
from docsweb.gdoc import WriteBudget
from docsweb.testing import FakeGoogle, wait_for
from katopotato.blobs import FileBlobStore
from katopotato.broker import Broker
from katopotato.transcription import transcript_events

from ..conftest import requires_media_tools
from .conftest import (
    Receiver,
    doc_segments,
    replay,
    segment_lines,
    stream_source,
    transcribe,
)

REPO = Path(__file__).resolve().parents[2]


def only_document(google: FakeGoogle) -> str:
    (doc_id,) = google.documents
    return doc_id


async def run_gdoc(
    google: FakeGoogle,
    settings: DocsWebSettings,
    broker: Broker,
    session_id: str,
    spec: dict[str, object],
    events: list[Event] | None = None,
    timeout_s: float = 60,
) -> SinkManager:
    if events is not None:
        await replay(broker, session_id, events)
    manager = SinkManager(session_id, stream_source(broker, session_id), MemoryCursorStore(), settings=settings)
    await manager.start(parse_outputs([{"type": "gdoc", "batch_interval_s": 1, "max_backoff_s": 0.5, **spec}]))
    await manager.wait(timeout_s)
    await manager.close()
    return manager


# --- a live session -----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(180)
@requires_media_tools
async def test_a_live_session_lands_in_the_doc_in_order(
    google: FakeGoogle,
    settings: DocsWebSettings,
    engine: FasterWhisperEngine,
    two_paragraphs: Programme,
    broker: Broker,
    receiver: Receiver,
    local_guard: UrlGuard,
    tmp_path: Path,
) -> None:
    """The real pipeline reads a programme at 1x; every event goes to the broker's transcript stream as
    it is committed, and a Google Doc, a webhook and three files follow the stream live."""
    sid = "live-debate"
    blobs = FileBlobStore(tmp_path / "blobs")
    await receiver.start()
    outputs = parse_outputs(
        [
            {
                "type": "gdoc",
                "title": "Council debate",
                "share_with": ["press@campaign.example"],
                "batch_interval_s": 1,
            },
            {"type": "webhook", "url": receiver.url, "secret": receiver.secret},
            {"type": "file", "format": "srt"},
            {"type": "file", "format": "vtt"},
            {"type": "file", "format": "jsonl"},
        ]
    )
    await validate_outputs(outputs, settings=settings, blobs=blobs, guard=local_guard)
    store = SqliteCursorStore(tmp_path / "cursors.db")
    manager = SinkManager(
        sid,
        stream_source(broker, sid),
        store,
        settings=settings,
        blobs=blobs,
        guard=local_guard,
        title="Council debate",
    )
    await manager.start(outputs)
    async for event in transcribe(two_paragraphs.path, engine, sid, realtime=True):
        await replay(broker, sid, [event])
    ended_at = time.time()
    statuses = await manager.wait(60)
    await manager.close()

    assert [s.state.health for s in statuses] == ["done"] * 5, [s.to_dict() for s in statuses]
    events = [e async for _i, e in transcript_events(broker, sid, follow=False)]
    doc_id = only_document(google)
    paragraphs = google.paragraphs(doc_id)
    assert paragraphs[0].text == "Council debate" and paragraphs[0].style == "HEADING_1"
    assert paragraphs[1].text.startswith(f"Source: {two_paragraphs.path}") and paragraphs[1].italic
    assert doc_segments(google, doc_id) == segment_lines(events), "every segment once, in order"
    assert paragraphs[-1].text.startswith("[end of transcript") and paragraphs[-1].italic
    segment_paragraphs = [p for p in paragraphs if not p.italic and p.style == "NORMAL_TEXT"]
    assert all(
        p.link()
        and p.link().startswith(  # type: ignore[union-attr]
            "https://couchpotato.example.org/#/sessions/live-debate?t="
        )
        for p in segment_paragraphs
    )
    assert google.documents[doc_id].permissions[-1]["emailAddress"] == "press@campaign.example"
    # live: text reached the doc while the programme was still playing, in several writes
    texts = [w for w in google.writes if w.document_id == doc_id and w.inserted]
    assert len(texts) >= 3 and texts[0].at < ended_at - 5
    writes_per_min = len(texts) / max(1e-9, (texts[-1].at - texts[0].at) / 60)
    assert writes_per_min <= 60
    # the webhook got every event, once, in order, signed
    ids = await store.list(sid)
    assert receiver.bad_signatures == 0 and receiver.duplicates == 0
    assert [e["type"] for _i, e in receiver.received] == [e.type for e in events]
    assert len(ids) == 5
    # files: each one is what the core's writer makes of the stream (checked further in test_files)
    srt = (await blobs.get(statuses[2].target)).decode()
    vtt = (await blobs.get(statuses[3].target)).decode()
    jsonl = (await blobs.get(statuses[4].target)).decode()
    assert srt.startswith("1\n00:00:") and vtt.startswith("WEBVTT\n\n00:00:")
    assert [json.loads(line)["type"] for line in jsonl.splitlines()] == [e.type for e in events]


# --- retries ------------------------------------------------------------------------------------


async def test_429_and_5xx_are_retried_honouring_retry_after(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker, recorded: list[Event]
) -> None:
    google.fail("documents.get", 503)
    google.fail("documents.batchUpdate", 429, 2, retry_after=1)
    google.fail("documents.batchUpdate", 500)
    manager = await run_gdoc(google, settings, broker, "retries", {}, recorded)
    (status,) = manager.status()
    assert status.state.health == "done" and status.state.cursor is not None
    doc_id = only_document(google)
    assert doc_segments(google, doc_id) == segment_lines(recorded)
    assert google.count("documents.get", 503) == 1
    assert google.count("documents.batchUpdate", 429) == 2 and google.count("documents.batchUpdate", 500) == 1
    calls = [r for r in google.requests if r.method == "documents.batchUpdate"]
    for a, b in itertools.pairwise(calls):
        if a.status == 429:
            assert b.at - a.at >= 0.95, "Retry-After: 1 was honoured"
    assert "500" in status.state.last_error


async def test_a_write_applied_but_answered_500_is_not_written_twice(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker, recorded: list[Event]
) -> None:
    """The API applies the batch, then the answer is lost (500): the sink reads its marker back."""
    sid = "ambiguous"
    await replay(broker, sid, recorded[:4])
    manager = SinkManager(sid, stream_source(broker, sid), MemoryCursorStore(), settings=settings)
    await manager.start(parse_outputs([{"type": "gdoc", "batch_interval_s": 1, "max_backoff_s": 0.3}]))
    await wait_for(lambda: len(google.writes) >= 2)  # created, and the first batch written
    google.fail("documents.batchUpdate", 500, after_apply=True)
    await replay(broker, sid, recorded[4:])
    await manager.wait(60)
    await manager.close()
    doc_id = only_document(google)
    assert google.count("documents.batchUpdate", 500) == 1
    assert doc_segments(google, doc_id) == segment_lines(recorded)
    assert len(google.named_ranges(doc_id)) == 1, "one marker: each write moves it"


async def test_killed_between_write_and_cursor_save_does_not_double(
    google: FakeGoogle, settings: DocsWebSettings, recorded: list[Event], tmp_path: Path
) -> None:
    """The sink runs as a process; right after the document took its third write, before the
    answer, the process is killed (SIGKILL). Started again, it resumes without doubling anything."""
    doc_id = google.new_document("Debate night", ["Notes from the campaign team."])
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(dumps(e) + "\n" for e in recorded))
    store_path = tmp_path / "cursors.db"
    assert settings.google_credentials is not None
    argv = [
        sys.executable, "-m", "tests.docsweb.sink_process", str(events_file), str(store_path),
        str(settings.google_credentials), settings.docs_endpoint, settings.drive_endpoint, doc_id,
    ]  # fmt: skip
    writes = 0
    proc: asyncio.subprocess.Process | None = None

    def kill_on_third_write(document_id: str) -> None:
        nonlocal writes
        writes += 1
        if writes == 3 and proc is not None:
            os.kill(proc.pid, signal.SIGKILL)

    google.on_write = kill_on_third_write
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=asyncio.subprocess.PIPE)
    assert await asyncio.wait_for(proc.wait(), 60) == -signal.SIGKILL
    google.on_write = None

    async with SqliteCursorStore(store_path) as store:
        saved = await store.load("killed", "doc")
    assert saved is not None and saved.cursor is not None
    (marker,) = google.named_ranges(doc_id)
    assert int(marker.rsplit("/", 1)[1]) > int(saved.cursor), "the third write is in the doc, not in the cursor"

    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    paragraphs = google.paragraphs(doc_id)
    assert paragraphs[0].text == "Notes from the campaign team."
    assert [p.text for p in paragraphs].count("Transcript killed") == 1
    assert doc_segments(google, doc_id) == segment_lines(recorded)


# --- people editing -----------------------------------------------------------------------------


async def test_a_paragraph_typed_in_the_middle_does_not_break_appending(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker, recorded: list[Event]
) -> None:
    sid = "typing"
    half = len(recorded) // 2
    await replay(broker, sid, recorded[:half])
    manager = SinkManager(sid, stream_source(broker, sid), MemoryCursorStore(), settings=settings)
    await manager.start(parse_outputs([{"type": "gdoc", "batch_interval_s": 1, "max_backoff_s": 0.3}]))
    await wait_for(lambda: bool(google.documents) and len(doc_segments(google, only_document(google))) >= 2)
    doc_id = only_document(google)
    google.type_paragraph(doc_id, "FACT CHECK: the library budget was cut in 2019.", before=3)
    google.type_at_end(doc_id, "Someone is typing at the end", {"bold": True, "underline": True})
    await replay(broker, sid, recorded[half:])
    await manager.wait(60)
    await manager.close()

    paragraphs = google.paragraphs(doc_id)
    assert paragraphs[3].text == "FACT CHECK: the library budget was cut in 2019."
    assert "Someone is typing at the end" in [p.text for p in paragraphs], "the person's text stays its own paragraph"
    assert doc_segments(google, doc_id) == segment_lines(recorded)
    assert google.count("documents.batchUpdate", 400) >= 1, "the write at the old end index was refused"
    for p in paragraphs:
        if p.text[:1] == "[" and not p.italic:
            assert p.style == "NORMAL_TEXT" and p.link() is not None
            assert not any(s.get("bold") or s.get("underline") for _t, s in p.runs), "the person's style did not leak"


async def test_text_outside_the_bmp_keeps_styles_aligned(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker
) -> None:
    """Docs indexes count UTF-16 units: emoji take two."""
    now = time.time()
    events: list[Event] = [
        SessionEvent(now, "emoji", "https://example.org/live 🎤", "http"),
        TranscriptEvent("emoji", 0, 3.0, 5.0, "We won 🎉 tonight", (), now),
        GapEvent("emoji", 1, 5.0, 9.0, "asr_failed"),
        TranscriptEvent("emoji", 2, 9.0, 11.0, "Thank you 🙏🏽 all", (), now),
        EndEvent("end_of_source", "", 3),
    ]
    await run_gdoc(google, settings, broker, "emoji", {"title": "Débat 🎤 live"}, events)
    paragraphs = google.paragraphs(only_document(google))
    assert [p.text for p in paragraphs] == [
        "Débat 🎤 live",
        paragraphs[1].text,
        "[00:00:03] We won 🎉 tonight",
        "[00:00:05] [gap until 00:00:09: asr_failed]",
        "[00:00:09] Thank you 🙏🏽 all",
        "[end of transcript — end_of_source]",
    ]
    assert paragraphs[1].text.startswith("Source: https://example.org/live 🎤 · Started ")
    for p in (paragraphs[2], paragraphs[4]):
        linked = [t for t, s in p.runs if "link" in s]
        assert linked == [p.text[:10]], p.runs
        assert not any(s.get("italic") for _t, s in p.runs)
    assert paragraphs[3].italic and paragraphs[5].italic and not paragraphs[0].italic


# --- credentials and sharing --------------------------------------------------------------------


async def test_a_user_token_appends_to_an_existing_document(
    google: FakeGoogle, broker: Broker, recorded: list[Event]
) -> None:
    token = google.user_token()
    doc_id = google.new_document("Campaign notes", ["Agenda for tonight."])
    settings = DocsWebSettings(docs_endpoint=google.docs_endpoint, drive_endpoint=google.drive_endpoint)
    outputs = parse_outputs([{"type": "gdoc", "document_id": doc_id, "user_token": token}])
    await validate_outputs(outputs, settings=settings)
    await run_gdoc(google, settings, broker, "user", {"document_id": doc_id, "user_token": token}, recorded)
    assert list(google.documents) == [doc_id], "appended, no document created"
    paragraphs = google.paragraphs(doc_id)
    assert paragraphs[0].text == "Agenda for tonight." and paragraphs[1].text == "Transcript user"
    assert doc_segments(google, doc_id) == segment_lines(recorded)
    writers = {r.principal for r in google.requests if r.method == "documents.batchUpdate"}
    assert writers == {f"user:{token['client_id']}"}
    assert google.token_requests[0]["grant_type"] == "refresh_token"


async def test_delegation_folder_and_sharing(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker, recorded: list[Event]
) -> None:
    spec: dict[str, object] = {
        "subject": "editor@campaign.example",
        "folder_id": "debates-folder",
        "share_with": ["a@campaign.example", "b@campaign.example"],
        "share_role": "commenter",
        "title": "Debate, 3 June",
    }
    await run_gdoc(google, settings, broker, "delegated", spec, [*recorded[:3], EndEvent()])
    doc_id = only_document(google)
    doc = google.documents[doc_id]
    assert doc.title == "Debate, 3 June" and doc.parents == ["debates-folder"]
    shared = [(p["emailAddress"], p["role"], p["sendNotificationEmail"]) for p in doc.permissions if "id" in p]
    assert shared == [("a@campaign.example", "commenter", "false"), ("b@campaign.example", "commenter", "false")]
    assertion = google.token_requests[0]["assertion"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(assertion + "=" * (-len(assertion) % 4)))
    assert claims["sub"] == "editor@campaign.example"
    assert "https://www.googleapis.com/auth/drive" in claims["scope"].split()
    assert {r.principal for r in google.requests if r.method.startswith("documents.")} == {"editor@campaign.example"}


async def test_outputs_are_validated_at_creation(google: FakeGoogle) -> None:
    from pydantic import ValidationError

    from docsweb import SinkConfigError

    with pytest.raises(ValidationError, match="folder_id applies to a new document"):
        parse_outputs([{"type": "gdoc", "document_id": "abcdefghijkl", "folder_id": "f"}])
    with pytest.raises(ValidationError):
        parse_outputs([{"type": "gdoc", "share_with": ["not-an-address"]}])
    with pytest.raises(ValidationError):
        parse_outputs([{"type": "gdocs"}])
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/etc/couchpotato/sa.json",
        "COUCHPOTATO_GOOGLE_DOCS_ENDPOINT": google.docs_endpoint,
        "COUCHPOTATO_PUBLIC_URL": "https://cp.example.org/",
    }
    from_env = DocsWebSettings.from_env(env)
    assert from_env.google_credentials == Path("/etc/couchpotato/sa.json")
    assert from_env.docs_endpoint == google.docs_endpoint and from_env.console_url == "https://cp.example.org"
    assert DocsWebSettings.from_env({}).drive_endpoint == "https://www.googleapis.com/drive/v3/"
    with pytest.raises(SinkConfigError, match="not a file"):
        await validate_outputs(parse_outputs([{"type": "gdoc"}]), settings=from_env)
    no_creds = DocsWebSettings(docs_endpoint=google.docs_endpoint)
    with pytest.raises(SinkConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        await validate_outputs(parse_outputs([{"type": "gdoc"}]), settings=no_creds)


async def test_write_budget_spaces_writes_over_its_window() -> None:
    budget = WriteBudget(3, window_s=0.5)
    started = time.monotonic()
    for _ in range(7):
        await budget.acquire()
    assert time.monotonic() - started >= 1.0  # 3 now, 3 after 0.5 s, 1 after 1.0 s


async def test_sinks_sharing_a_user_batch_more_once_the_budget_is_busy(
    google: FakeGoogle, settings: DocsWebSettings, broker: Broker
) -> None:
    """Two documents written as one service account share its budget; past half of it, each gets
    its fair share: one write per 2 × window / quota seconds."""
    quota = 8
    shared = replace(settings, docs_write_quota_per_min=quota)
    managers = []
    for sid in ("a", "b"):
        await replay(broker, sid, [SessionEvent(time.time(), sid, "", "")])
        m = SinkManager(sid, stream_source(broker, sid), MemoryCursorStore(), settings=shared)
        await m.start(parse_outputs([{"type": "gdoc", "batch_interval_s": 1}]))
        managers.append(m)
    (a,) = managers[0].runners.values()
    assert a.sink.policy.min_interval_s == 1  # room in the budget: the spec's interval
    await wait_for(lambda: google.count("documents.batchUpdate", 200) == 2)  # + 2 creates: half the budget
    assert a.sink.policy.min_interval_s == pytest.approx(2 * (60 + 1) / quota)
    for m in managers:
        await m.close()
