"""The in-process live pipeline: PCM → segmenter → ASR pool → resequencer → events.

``Pipeline.events`` is an async generator of transcript events for one session: a SessionEvent as
soon as audio flows, a TranscriptEvent or GapEvent per seq in order as each is committed, and an
EndEvent last (its ``error`` set when the source failed mid-way; what was committed stays
committed). CPU work never runs on the event loop: the segmenter (VAD) has its own thread, ASR runs
on a pool of ``asr_workers`` threads sharing one model. At most ``asr_workers + 1`` segments wait
for ASR, so a recorded file is read only as fast as it is transcribed.

The CLI drives this directly; the service (katopotato) reuses the same segmenter, engine and
resequencer, distributed through its broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from .asr import AsrEngine, AsrOptions
from .constants import ASR_RETRIES, DEFAULT_ASR_WORKERS, PARTIAL_INTERVAL_S, SAMPLE_RATE_HZ
from .corrections import Corrections
from .decoder import PcmChunk
from .errors import AsrError, CouchPotatoError
from .partials import DraftPacer, Drafts
from .records import EndEvent, LiveEvent, SegmentFailure, SegmentResult, SessionEvent
from .resequencer import Resequencer
from .segmenter import AudioSegment, Segmenter, SegmenterOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    """Per-session options of the live pipeline.

    Attributes:
        session_id: id carried by every record; generated when empty.
        asr: decoding options (language, vocabulary).
        asr_workers: segments transcribed at once.
        segmenter: how audio is cut.
        corrections: regex fixes applied at commit.
        partials: publish interim text (``PartialEvent``) of the segment still being heard.
        partial_interval_s: how often the open segment is drafted, at most.
    """

    session_id: str = ""
    asr: AsrOptions = field(default_factory=AsrOptions)
    asr_workers: int = DEFAULT_ASR_WORKERS
    segmenter: SegmenterOptions = field(default_factory=SegmenterOptions)
    corrections: Corrections = field(default_factory=Corrections)
    partials: bool = False
    partial_interval_s: float = PARTIAL_INTERVAL_S


@dataclass
class PipelineStats:
    """What a run did, for status lines and benchmarks."""

    audio_s: float = 0.0
    segments: int = 0
    committed: int = 0
    gaps: int = 0
    partials: int = 0
    drafts_skipped: int = 0
    asr_s: float = 0.0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None


@dataclass
class SourceInfo:
    """What the session line says about the source; ``media_epoch`` is read once audio flows."""

    spec: str = ""
    kind: str = ""
    reason: str = ""
    media_epoch: Callable[[], float | None] = lambda: None


class Pipeline:
    """One session's live transcription, in this process."""

    def __init__(self, engine: AsrEngine, options: PipelineOptions | None = None) -> None:
        self.engine = engine
        self.options = options or PipelineOptions()
        self.session_id = self.options.session_id or uuid.uuid4().hex[:12]
        self.stats = PipelineStats()

    async def events(
        self, pcm: AsyncIterable[PcmChunk], source: SourceInfo | None = None
    ) -> AsyncGenerator[LiveEvent, None]:
        """The session's events; ``PartialEvent``s among them only with ``options.partials``."""
        source = source or SourceInfo()
        opts = self.options
        out: asyncio.Queue[LiveEvent | BaseException | None] = asyncio.Queue()
        segmenter = Segmenter(self.session_id, opts.segmenter)
        reseq = Resequencer(self.session_id, corrections=opts.corrections)
        workers = max(1, opts.asr_workers)
        asr_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        vad_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        in_flight = asyncio.Semaphore(workers + 1)
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        drafts = Drafts(self.session_id)
        draft_options = replace(opts.asr, draft=True)
        finals_running = 0
        draft_task: asyncio.Task[None] | None = None
        pacer = DraftPacer(opts.partial_interval_s)

        def publish(outcome: SegmentResult | SegmentFailure) -> None:
            for ev in reseq.offer(outcome, time.time()):
                self._count(ev)
                out.put_nowait(ev)

        async def draft(seg: AudioSegment) -> None:
            try:
                words = await loop.run_in_executor(asr_pool, self.engine.transcribe, seg.samples, draft_options)
            except AsrError as e:
                log.debug("draft of seq %d failed: %s", seg.segment.seq, e)
                return
            offset = seg.segment.start
            for ev in drafts.update(seg.segment, [w.shifted(offset) for w in words], reseq.next_seq, time.time()):
                self.stats.partials += 1
                out.put_nowait(ev)

        async def maybe_draft() -> None:
            """Draft the open segment if it is time and an ASR thread is free, skipping the round
            while a draft runs or every thread decodes a final: finals keep their latency, partials
            thin out under load."""
            nonlocal draft_task
            now = time.monotonic()
            if not pacer.due(now, segmenter.next_seq):
                return
            if finals_running >= workers or (draft_task is not None and not draft_task.done()):
                self.stats.drafts_skipped += 1
                return
            seg = await loop.run_in_executor(vad_pool, segmenter.open_audio)
            if seg is None or not pacer.worth(seg.segment):
                return
            pacer.started(now, seg.segment)
            draft_task = asyncio.create_task(draft(seg))
            tasks.add(draft_task)
            draft_task.add_done_callback(tasks.discard)

        async def transcribe(seg: AudioSegment) -> None:
            nonlocal finals_running
            finals_running += 1
            try:
                outcome: SegmentResult | SegmentFailure
                for attempt in range(ASR_RETRIES + 1):
                    t0 = time.perf_counter()
                    try:
                        words = await loop.run_in_executor(asr_pool, self.engine.transcribe, seg.samples, opts.asr)
                    except AsrError as e:
                        log.warning("ASR failed on seq %d (attempt %d): %s", seg.segment.seq, attempt + 1, e)
                        outcome = SegmentFailure(seg.segment, f"asr_failed: {e}")
                        continue
                    finally:
                        self.stats.asr_s += time.perf_counter() - t0
                    offset = seg.segment.start
                    outcome = SegmentResult(
                        seg.segment,
                        tuple(w.shifted(offset) for w in words),
                        self.engine.name,
                    )
                    break
                publish(outcome)
            finally:
                finals_running -= 1
                in_flight.release()

        async def dispatch(segments: list[AudioSegment]) -> None:
            for seg in segments:
                await in_flight.acquire()
                self.stats.segments += 1
                task = asyncio.create_task(transcribe(seg))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        async def capture() -> None:
            error: BaseException | None = None
            announced = False
            try:
                async for chunk in pcm:
                    if not announced:
                        epoch = source.media_epoch() or time.time() - len(chunk.samples) / SAMPLE_RATE_HZ
                        out.put_nowait(SessionEvent(epoch, self.session_id, source.spec, source.kind, source.reason))
                        announced = True
                    self.stats.audio_s = chunk.end_sample / SAMPLE_RATE_HZ
                    await dispatch(await loop.run_in_executor(vad_pool, segmenter.push, chunk))
                    if opts.partials:
                        await maybe_draft()
                await dispatch(await loop.run_in_executor(vad_pool, segmenter.flush))
            except CouchPotatoError as e:
                error = e
                with contextlib.suppress(CouchPotatoError):
                    await dispatch(await loop.run_in_executor(vad_pool, segmenter.flush))
            finally:
                if tasks:
                    await asyncio.gather(*list(tasks), return_exceptions=True)
            if not announced:
                if error is not None:
                    out.put_nowait(error)
                    return
                out.put_nowait(
                    SessionEvent(
                        source.media_epoch() or time.time(),
                        self.session_id,
                        source.spec,
                        source.kind,
                        source.reason,
                    )
                )
            for ev in reseq.finish(segmenter.next_seq, time.time()):
                self._count(ev)
                out.put_nowait(ev)
            end = EndEvent("error" if error else "end_of_source", str(error) if error else "", segmenter.next_seq)
            out.put_nowait(end)
            out.put_nowait(None)

        runner = asyncio.create_task(capture())
        try:
            while True:
                item = await out.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
            await runner
        finally:
            self.stats.finished_at = time.time()
            if not runner.done():
                runner.cancel()
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(runner, *list(tasks), return_exceptions=True)
            asr_pool.shutdown(wait=False, cancel_futures=True)
            vad_pool.shutdown(wait=False, cancel_futures=True)

    def _count(self, ev: Any) -> None:
        if getattr(ev, "type", "") == "gap":
            self.stats.gaps += 1
        else:
            self.stats.committed += 1


__all__ = ["Pipeline", "PipelineOptions", "PipelineStats", "SourceInfo"]
