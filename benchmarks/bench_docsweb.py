"""Benchmark of the Google Docs sink (issue 7). Prints a Markdown table.

    .venv/bin/python benchmarks/bench_docsweb.py [--paragraphs N] [--sessions K]

Google cannot be reached here: each sink writes through the real google-api-python-client to its
own local stand-in (``docsweb.testing.fake_google``), which enforces the Docs write quota of 60
write requests per minute per user with 429 + ``Retry-After`` as Google does. Two sinks follow the
same transcript stream, in the same run:

- **batched**: ``GDocSink`` as shipped (one ``batchUpdate`` per ``batch_interval_s`` = 2 s or 50
  events, a write budget per Google user shared by all its documents, end index read back,
  revision-checked writes, a marker per batch);
- **naive**: one ``batchUpdate`` (``insertText`` at the end of the body) per segment, as soon as it
  is committed, retried on 429/5xx after ``Retry-After`` by the same runner.

Scenarios:

1. **live**: the generated programme (``--paragraphs`` corpus paragraphs, six voices) read at 1x
   by the real pipeline (ffmpeg, Silero VAD, tiny.en); every committed event is appended to a
   broker stream (``katopotato`` memory broker) that both sinks follow.
2. **shared account**: ``--sessions`` sessions at once, all written as the same service account
   (the quota is per user): the live session's events replayed into K streams with the timing
   they were committed at, each session starting up to 3 s after the previous.

Lag: from the moment an event is appended to the stream (committed) to the moment the fake
applies the write that holds its text. Requests per minute: Docs API writes accepted
(``documents.create`` and ``batchUpdate``) and reads (``documents.get``), per minute of the span
from the first commit (or write) to the last write; 429s: write requests the API refused for the quota.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from couchpotato.asr import FasterWhisperEngine
from couchpotato.capture import CaptureOptions, capture_events
from couchpotato.pipeline import PipelineOptions
from couchpotato.records import Event, TranscriptEvent, event_from_dict
from couchpotato.testing import build_programme
from couchpotato.urlguard import UrlGuard
from docsweb import (
    BatchPolicy,
    DocsWebSettings,
    GDocSpec,
    Item,
    MemoryCursorStore,
    SinkContext,
    SinkManager,
    SinkRunner,
    parse_outputs,
)
from docsweb.gdoc import ApiFailure, DocsApi, GoogleCaller, clean, hms, load_credentials
from docsweb.testing import FakeGoogle
from katopotato.broker import Broker, MemoryBroker
from katopotato.keys import transcript_stream
from katopotato.transcription import transcript_events


class NaiveGDocSink:
    """The baseline: one batchUpdate per segment, appended at the end of the body, no batching,
    no budget, no read-back, no marker."""

    type = "gdoc-naive"

    def __init__(self, settings: DocsWebSettings, session_id: str) -> None:
        self.id = "naive"
        self.settings = settings
        self.session_id = session_id
        self.policy = BatchPolicy(min_interval_s=0.0, max_events=1, retry_for_s=300, max_backoff_s=60)
        self.caller = GoogleCaller("naive")
        self.api: DocsApi | None = None
        self.document_id = ""

    @property
    def target(self) -> str:
        return self.document_id

    async def open(self, ctx: SinkContext) -> str | None:
        if self.api is None:
            spec = GDocSpec.model_validate({"type": "gdoc", "id": "naive"})
            creds, _ = await asyncio.to_thread(load_credentials, self.settings, spec)
            self.api = await asyncio.get_running_loop().run_in_executor(self.caller.pool, DocsApi, creds, self.settings)
        if not self.document_id:
            try:
                doc = await self.caller.call("documents.create", self.api.create, f"Transcript {self.session_id}")
            except ApiFailure as e:
                raise e.retry() from e
            self.document_id = doc["documentId"]
        return ctx.stored_cursor

    async def ready(self) -> None:
        return None

    async def deliver(self, batch: Sequence[Item]) -> None:
        assert self.api is not None
        for item in batch:
            ev = item.event
            if isinstance(ev, TranscriptEvent) and clean(ev.text):
                text = f"[{hms(ev.start)}] {clean(ev.text)}\n"
                request = {"insertText": {"endOfSegmentLocation": {}, "text": text}}
                try:
                    await self.caller.call(
                        "documents.batchUpdate", self.api.batch_update, self.document_id, [request], None
                    )
                except ApiFailure as e:
                    raise e.retry() from e

    async def close(self) -> None:
        self.caller.shutdown()


@dataclass
class Session:
    """One session's stream: commit time and text of each segment, by event id."""

    session_id: str
    committed: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    scenario: str
    sink: str
    segments: int
    lags: list[float]
    span_s: float
    writes: int
    reads: int
    throttled: int
    complete: bool


def source_of(broker: Broker, session_id: str) -> Callable[[str | None], AsyncIterator[tuple[str, Event]]]:
    def source(after: str | None) -> AsyncIterator[tuple[str, Event]]:
        return transcript_events(broker, session_id, after=after or "0", block_s=0.5)

    return source


async def append(broker: Broker, session: Session, event: Event) -> None:
    (event_id,) = await broker.append(transcript_stream(session.session_id), [event.to_dict()])
    if isinstance(event, TranscriptEvent) and clean(event.text):
        session.committed[event_id] = time.time()
        session.texts[event_id] = clean(event.text)


def measure(scenario: str, sink: str, google: FakeGoogle, docs: dict[str, str], sessions: Sequence[Session]) -> Result:
    """Lag of each segment from commit to the write that holds it; requests over the sessions' span."""
    lags: list[float] = []
    complete = True
    for s in sessions:
        writes = [w for w in google.writes if w.document_id == docs[s.session_id] and w.inserted]
        body = "".join(p.text + "\n" for p in google.paragraphs(docs[s.session_id]))
        for event_id, text in s.texts.items():
            complete &= body.count(f"] {text}\n") == 1
            at = next((w.at for w in writes if f"] {text}\n" in "".join(w.inserted)), None)
            if at is None:
                complete = False
                continue
            lags.append(at - s.committed[event_id])
    first = min(min(min(s.committed.values()) for s in sessions), min(w.at for w in google.writes))
    last = max(w.at for w in google.writes)  # the sink's work ends with its last write, backlog included
    return Result(
        scenario,
        sink,
        sum(len(s.texts) for s in sessions),
        lags,
        max(1.0, last - first),
        google.count("documents.batchUpdate", 200) + google.count("documents.create", 200),
        google.count("documents.get", 200),
        sum(1 for r in google.requests if r.status == 429),
        complete,
    )


async def run_sinks(
    sessions: Sequence[Session],
    broker: Broker,
    batched: tuple[FakeGoogle, DocsWebSettings],
    naive: tuple[FakeGoogle, DocsWebSettings],
    produce: AsyncIterator[None],
) -> tuple[dict[str, str], dict[str, str]]:
    """Start a batched and a naive sink per session, let ``produce`` append the events, wait for both."""
    managers = []
    naive_sinks: list[NaiveGDocSink] = []
    tasks = []
    for s in sessions:
        m = SinkManager(s.session_id, source_of(broker, s.session_id), MemoryCursorStore(), settings=batched[1])
        await m.start(parse_outputs([{"type": "gdoc"}]))
        managers.append(m)
        sink = NaiveGDocSink(naive[1], s.session_id)
        naive_sinks.append(sink)
        tasks.append(
            asyncio.create_task(
                SinkRunner(s.session_id, sink, source_of(broker, s.session_id), MemoryCursorStore()).run()
            )
        )
    async for _ in produce:
        pass
    for m in managers:
        await m.wait(900)
        await m.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 900)
    for sink in naive_sinks:
        await sink.close()
    batched_docs = {
        s.session_id: str(m.runners[next(iter(m.runners))].state.data["document_id"])
        for s, m in zip(sessions, managers, strict=True)
    }
    naive_docs = {s.session_id: sink.document_id for s, sink in zip(sessions, naive_sinks, strict=True)}
    return batched_docs, naive_docs


def fake_settings(google: FakeGoogle, folder: Path) -> DocsWebSettings:
    folder.mkdir(parents=True, exist_ok=True)
    return DocsWebSettings(
        google_credentials=google.service_account_file(folder),
        docs_endpoint=google.docs_endpoint,
        drive_endpoint=google.drive_endpoint,
        console_url="https://couchpotato.example.org",
    )


async def live(audio: Path, engine: FasterWhisperEngine, tmp: Path) -> tuple[list[Result], list[tuple[float, Event]]]:
    session = Session("live")
    timeline: list[tuple[float, Event]] = []
    async with (
        FakeGoogle(write_quota_per_min=60) as gb,
        FakeGoogle(write_quota_per_min=60) as gn,
        MemoryBroker() as broker,
    ):
        sb, sn = fake_settings(gb, tmp / "b"), fake_settings(gn, tmp / "n")

        async def produce() -> AsyncIterator[None]:
            started = time.time()
            options = PipelineOptions(session_id="live", asr_workers=1)
            async for ev in capture_events(str(audio), engine, UrlGuard(), CaptureOptions(realtime=True), options):
                await append(broker, session, ev)
                timeline.append((time.time() - started, ev))
                yield None

        docs_b, docs_n = await run_sinks([session], broker, (gb, sb), (gn, sn), produce())
        return [
            measure("live, 1 session", "batched", gb, docs_b, [session]),
            measure("live, 1 session", "naive", gn, docs_n, [session]),
        ], timeline


async def shared(timeline: list[tuple[float, Event]], k: int, tmp: Path) -> list[Result]:
    sessions = [Session(f"s{i}") for i in range(k)]
    async with (
        FakeGoogle(write_quota_per_min=60) as gb,
        FakeGoogle(write_quota_per_min=60) as gn,
        MemoryBroker() as broker,
    ):
        sb, sn = fake_settings(gb, tmp / "sb"), fake_settings(gn, tmp / "sn")
        rng = random.Random(7)
        starts = [0.0]
        for _ in range(k - 1):
            starts.append(starts[-1] + rng.uniform(0, 3))

        async def replay_one(s: Session, delay: float) -> None:
            t0 = time.monotonic() + delay
            for at, ev in timeline:
                await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
                await append(broker, s, ev)

        async def produce() -> AsyncIterator[None]:
            await asyncio.gather(*(replay_one(s, d) for s, d in zip(sessions, starts, strict=True)))
            yield None

        docs_b, docs_n = await run_sinks(sessions, broker, (gb, sb), (gn, sn), produce())
        label = f"shared account, {k} sessions"
        return [measure(label, "batched", gb, docs_b, sessions), measure(label, "naive", gn, docs_n, sessions)]


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | sink | segments | lag p50 (s) | lag p95 (s) | lag max (s) | writes/min | reads/min "
        "| 429s | every segment once |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        per_min = 60.0 / r.span_s
        lines.append(
            f"| {r.scenario} | {r.sink} | {r.segments} | {pct(r.lags, 0.5):.2f} | {pct(r.lags, 0.95):.2f} | "
            f"{max(r.lags) if r.lags else float('nan'):.2f} | {r.writes * per_min:.1f} | {r.reads * per_min:.1f} | "
            f"{r.throttled} | {'yes' if r.complete else 'NO'} |"
        )
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--paragraphs", type=int, default=4, help="corpus paragraphs in the programme (4: about 75 s)")
    ap.add_argument("--sessions", default="6,12", help="sessions sharing one Google account, one scenario each")
    ap.add_argument("--timeline", type=Path, help="replay this live session (JSON) instead of transcribing one")
    ap.add_argument("--save-timeline", type=Path, help="save the live session's commit timeline here")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args()
    counts = [int(k) for k in args.sessions.split(",") if k.strip()]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        started = time.monotonic()
        results: list[Result] = []
        if args.timeline:
            timeline = [(float(t), event_from_dict(d)) for t, d in json.loads(args.timeline.read_text())]
            duration = timeline[-1][0]
        else:
            programme = build_programme(tmp / "programme", args.paragraphs)
            engine = FasterWhisperEngine("tiny.en", workers=1)
            results, timeline = await live(programme.path, engine, tmp)
            duration = programme.duration_s
            if args.save_timeline:
                args.save_timeline.write_text(json.dumps([(t, e.to_dict()) for t, e in timeline]))
        for k in counts:
            results += await shared(timeline, k, tmp)
        wall = time.monotonic() - started
    print(
        f"# DocsWeb: Google Docs sink, batched vs naive ({platform.machine()}, {os.cpu_count()} cores, "
        f"programme {duration:.0f} s, run {wall:.0f} s)\n"
    )
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))


if __name__ == "__main__":
    asyncio.run(main())
