"""Distributed live transcription: a ``capture`` job per session, an ``asr`` job per segment.

``transcription.capture`` runs the core's ``Capture`` and ``Segmenter`` for one session. Each
segment's audio goes to the blob store (16-bit PCM, ``audio/<session>/<seq>-<epoch>.s16``) and one
``transcription.asr`` job per segment is enqueued at live priority, idempotently
(``asr:<session>:<seq>``). ``transcription.asr`` jobs run on any worker, statelessly: they
transcribe the segment with ``FasterWhisperEngine`` and offer the ``SegmentResult`` (or, on their
last try, a ``SegmentFailure``) to the session's ``Resequencer``, whose state lives in the broker
(``session:<id>``). The offer is a compare-and-set that appends the events it commits to the
session's transcript stream (``transcript:<id>``) in the same atomic step, so every seq is committed
once, in order, whichever process commits it, and the stream ids serve as SSE ``Last-Event-ID``.

The capture job is the session's owner: it announces the session (the ``session`` event), gaps a
seq whose ASR never arrives (the resequencer's gap timeout), and after the source ends waits for
the outstanding segments and appends the ``end`` event; then it succeeds. It is a long-running job:
its worker's heartbeat keeps its lease, and when that worker dies (or drains) the job is reclaimed
by another worker, which continues the session: the capture state (``capture:<id>``) holds the next
seq and the media position reached, so numbering continues and, for a recorded source, the audio
already cut is skipped. A live source resumes at its live edge; the audio of the outage is lost
(HotPotato's overlapped hand-over is what makes a planned swap lossless). A capture job whose
worker dies on its last try is dead-lettered without running again; ``transcription.reap`` (cron,
every 5 minutes) ends its session instead.

HotPotato (``katopotato.capture``) runs inside the capture job: a supervisor judges the capture instance's
health every quarter second, and a broken instance, a swap asked for through ``request_swap``, or a
worker draining for a deploy replace the instance by a new one (another capture job, with
``takeover``) with no audio lost or doubled; the swap events go to the transcript stream, which
``transcript_events`` skips (``api.swaps.swap_events`` reads them). A reclaimed capture job resumes a
recorded source at its position (seeking) and a live HLS source back in its live window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from couchpotato.asr import AsrOptions
from couchpotato.capture import CaptureOptions
from couchpotato.constants import DEFAULT_MODEL, GAP_TIMEOUT_S
from couchpotato.corrections import Corrections
from couchpotato.errors import AsrError, CouchPotatoError
from couchpotato.health import NO_AUDIO_TIMEOUT_S
from couchpotato.keyed import VersionedValue, Write, update_keyed
from couchpotato.pcm import decode_pcm16, encode_pcm16
from couchpotato.records import (
    CommitEvent,
    EndEvent,
    Event,
    Segment,
    SegmentFailure,
    SegmentResult,
    event_from_dict,
)
from couchpotato.resequencer import Resequencer, ResequencerState
from couchpotato.segmenter import AudioSegment, SegmenterOptions
from couchpotato.urlguard import UrlGuard
from hotpotato import AlignOptions, SupervisorOptions
from hotpotato import constants as HC
from hotpotato.records import is_swap_event

from .asr_pool import asr_pool
from .broker import Broker
from .capture import (
    CaptureState,
    CaptureStore,
    NotOwner,
    SessionCapture,
    SwapSettings,
)
from .constants import (
    AUDIO_BLOB_PREFIX,
    CAPTURE_MAX_TRIES,
    LIVE_ASR_MAX_TRIES,
    PRIORITY_LIVE,
    SESSION_CAS_ATTEMPTS,
    SESSION_FINISH_TIMEOUT_S,
    SESSION_JANITOR_INTERVAL_S,
)
from .drafts import JobDrafter
from .drain import current_drain
from .errors import Abort, BlobNotFound, BrokerError, one_line
from .jobs import Job
from .keys import (
    asr_job_key,
    partials_stream,
    session_job_key,
    session_state_key,
    swap_job_key,
    transcript_stream,
)
from .plugin import JobContext, NoParams, Plugin
from .scheduler import Scheduler

log = logging.getLogger("katopotato.transcription")

CAPTURE_KIND = "transcription.capture"
ASR_KIND = "transcription.asr"
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PROGRESS_INTERVAL_S = 2.0
REAP_SCAN_LIMIT = 1000  # dead-lettered jobs looked at per run of ``reap``
REAP_RESULT_TTL_S = 3600.0  # a run's result (the sessions it moved on) is kept this long


class TranscriptionSettings(BaseModel):
    """Settings of the ``transcription`` plugin.

    Attributes:
        url_allowlist: CIDRs and hosts that sources may reach although not public.
        allow_local: local paths are allowed as sources (trusted deployments and tests only).
        asr_model: faster-whisper model (``tiny.en`` is bundled).
        asr_threads: segments one worker process transcribes at once.
        keep_audio: keep each segment's audio blob after it was transcribed.
        gap_timeout_s: a seq missing this long while later ones wait becomes a gap.
        finish_timeout_s: after the source ends, how long to wait for outstanding segments.
        supervise: replace a broken capture instance (HotPotato); False only reports its health.
        detection_s: no audio for this long (beyond the source's own bursts) is a broken capture.
        swap_start_timeout_s: a swap's new instance must be aligned within this.
        swap_cutover_timeout_s: after alignment, a low-energy cut-over point must come within this.
        xcorr_search_s: cross-correlation alignment searches the wall-clock prior ± this.
        min_alignment_ncc: a cross-correlation peak below this is not a confident alignment.
        partials: draft the open segment (interim text) while an SSE client follows the session's
            partials (``katopotato.drafts``).
    """

    url_allowlist: str = ""
    allow_local: bool = False
    asr_model: str = DEFAULT_MODEL
    asr_threads: int = Field(1, ge=1, le=16)
    keep_audio: bool = True
    gap_timeout_s: float = Field(GAP_TIMEOUT_S, gt=0)
    finish_timeout_s: float = Field(SESSION_FINISH_TIMEOUT_S, gt=0)
    supervise: bool = True
    detection_s: float = Field(HC.DETECTION_S, gt=0, le=60)
    swap_start_timeout_s: float = Field(HC.SWAP_START_TIMEOUT_S, gt=0)
    swap_cutover_timeout_s: float = Field(HC.CUTOVER_TIMEOUT_S, gt=0)
    xcorr_search_s: float = Field(HC.XCORR_SEARCH_S, gt=0, le=30)
    min_alignment_ncc: float = Field(HC.MIN_NCC, gt=0, le=1)
    partials: bool = True

    def swap_settings(self) -> SwapSettings:
        return SwapSettings(
            supervise=self.supervise,
            supervisor=SupervisorOptions(detection_s=self.detection_s),
            align=AlignOptions(search_s=self.xcorr_search_s, min_ncc=self.min_alignment_ncc),
            start_timeout_s=self.swap_start_timeout_s,
            cutover_timeout_s=self.swap_cutover_timeout_s,
        )


class CaptureParams(BaseModel):
    """One session's capture: the source and how to transcribe it."""

    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    source: str = Field(min_length=1)
    realtime: bool = False
    duration_s: float | None = Field(None, gt=0)
    language: str = "en"
    vocabulary: list[str] = Field(default_factory=list)
    corrections: dict[str, str] = Field(default_factory=dict)
    segmenter: dict[str, float] = Field(default_factory=dict)
    mode: Literal["auto", "direct", "browser"] = "auto"
    no_audio_timeout_s: float | None = Field(NO_AUDIO_TIMEOUT_S, gt=0)
    silence_timeout_s: float | None = Field(None, gt=0)
    takeover: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("segmenter")
    @classmethod
    def _segmenter_options(cls, v: dict[str, float]) -> dict[str, float]:
        try:
            SegmenterOptions.coerce(v or None)
        except TypeError as e:
            raise ValueError(f"unknown segmenter option: {e}") from e
        except CouchPotatoError as e:
            raise ValueError(str(e)) from e
        return v

    @field_validator("corrections")
    @classmethod
    def _corrections(cls, v: dict[str, str]) -> dict[str, str]:
        try:
            Corrections.from_mapping(v)
        except CouchPotatoError as e:
            raise ValueError(str(e)) from e
        return v


class AsrParams(BaseModel):
    """One segment to transcribe."""

    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    segment: dict[str, Any]
    language: str = "en"
    vocabulary: list[str] = Field(default_factory=list)


plugin = Plugin(
    "transcription",
    "1.0",
    description="Live transcription distributed over workers: capture sessions and per-segment ASR.",
    settings=TranscriptionSettings,
)


# --- the session's shared state -----------------------------------------------------------------


@dataclass
class SessionState:
    """What the broker keeps per session (``session:<id>``), JSON round-trip via to/from_dict.

    Attributes:
        reseq: the resequencer's state.
        total: segments the source produced, once it ended.
        ended: the ``end`` event was appended.
        corrections: the session's regex corrections, applied at commit.
        gap_timeout_s: the resequencer's gap timeout.
        end_reason, error: what the ``end`` event will say.
        source_ended_at: wall time the source ended (for the finish timeout).
    """

    reseq: ResequencerState = field(default_factory=ResequencerState)
    total: int | None = None
    ended: bool = False
    corrections: dict[str, str] = field(default_factory=dict)
    gap_timeout_s: float = GAP_TIMEOUT_S
    end_reason: str = "end_of_source"
    error: str = ""
    source_ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": 1,
            "reseq": self.reseq.to_dict(),
            "total": self.total,
            "ended": self.ended,
            "corrections": self.corrections,
            "gap_timeout_s": self.gap_timeout_s,
            "end_reason": self.end_reason,
            "error": self.error,
            "source_ended_at": self.source_ended_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionState:
        return cls(
            reseq=ResequencerState.from_dict(d["reseq"]),
            total=d.get("total"),
            ended=bool(d.get("ended", False)),
            corrections=dict(d.get("corrections") or {}),
            gap_timeout_s=float(d.get("gap_timeout_s", GAP_TIMEOUT_S)),
            end_reason=str(d.get("end_reason", "end_of_source")),
            error=str(d.get("error", "")),
            source_ended_at=d.get("source_ended_at"),
        )

    def resequencer(self, session_id: str) -> Resequencer:
        corrections = Corrections.from_mapping(self.corrections) if self.corrections else Corrections()
        return Resequencer(session_id, corrections=corrections, gap_timeout_s=self.gap_timeout_s, state=self.reseq)

    def end_if_complete(self, events: list[dict[str, Any]]) -> None:
        """Append the ``end`` event once every seq up to ``total`` is committed."""
        if not self.ended and self.total is not None and self.reseq.next_seq >= self.total:
            self.ended = True
            events.append(EndEvent(self.end_reason, self.error, self.total).to_dict())


Update = Callable[[SessionState], list[dict[str, Any]] | None]


async def update_session(broker: Broker, session_id: str, update: Update) -> list[str]:
    """Apply ``update`` to the session's state with compare-and-set, appending the events it
    returns to the transcript atomically; ``update`` returns None when nothing changed. Retried
    on conflict (``update`` must be a pure function of the state). The new events' ids."""

    def change(cur: VersionedValue | None) -> Write | None:
        if cur is None:
            raise Abort(f"session {session_id} has no state (it was never started, or was deleted)")
        state = SessionState.from_dict(cur.value)
        events = update(state)
        if events is None:
            return None
        return Write(state.to_dict(), transcript_stream(session_id), events)

    def conflict() -> Exception:
        return BrokerError(f"session {session_id}: state kept changing under {SESSION_CAS_ATTEMPTS} attempts")

    ids = await update_keyed(
        broker, session_state_key(session_id), change, attempts=SESSION_CAS_ATTEMPTS, conflict=conflict
    )
    return ids or []


def _commits(events: list[CommitEvent]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def offer(outcome: SegmentResult | SegmentFailure, session_id: str) -> Update:
    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended or outcome.seq < state.reseq.next_seq or outcome.seq in state.reseq.held:
            return None  # committed already: a duplicate delivery or a late retry
        events = _commits(state.resequencer(session_id).offer(outcome, time.time()))
        state.end_if_complete(events)
        return events

    return apply


def _expire(session_id: str) -> Update:
    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended:
            return None
        events = _commits(state.resequencer(session_id).expire(time.time()))
        state.end_if_complete(events)
        return events or None

    return apply


def _source_ended(session_id: str, total: int, reason: str, error: str) -> Update:
    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended or state.total is not None:
            return None
        state.total, state.end_reason, state.error = total, reason, error
        state.source_ended_at = time.time()
        events: list[dict[str, Any]] = []
        state.end_if_complete(events)
        return events

    return apply


def _finish(session_id: str, reason: str | None = None) -> Update:
    """Gap whatever never arrived and end the session now."""

    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended:
            return None
        if reason is not None:
            state.end_reason = reason
        total = state.total if state.total is not None else state.reseq.next_seq + len(state.reseq.held)
        if state.reseq.held:
            total = max(total, max(state.reseq.held) + 1)
        state.total = total
        events = _commits(state.resequencer(session_id).finish(total, time.time()))
        state.end_if_complete(events)
        return events

    return apply


# --- the capture job ----------------------------------------------------------------------------


def audio_key(session_id: str, seq: int, epoch: int) -> str:
    """Where a segment's audio goes; the epoch keeps a capture instance that takes over from
    overwriting audio its predecessor cut under the same seq."""
    return f"{AUDIO_BLOB_PREFIX}{session_id}/{seq:06d}-{epoch}.s16"


@plugin.job("capture", long_running=True, max_tries=CAPTURE_MAX_TRIES, priority=PRIORITY_LIVE)
async def capture(ctx: JobContext, p: CaptureParams) -> dict[str, Any]:
    """Capture one session's source, cut it into segments and fan them out to ASR; supervised and
    swapped by HotPotato (``katopotato.capture``). With ``takeover``, the new instance of a swap."""
    settings = ctx.settings
    assert isinstance(settings, TranscriptionSettings)
    sid = p.session_id
    store = CaptureStore(ctx.broker, sid)
    st = await store.load()
    runtime = _runtime(ctx, p, settings, store)
    janitor: asyncio.Task[None] | None = None
    try:
        if p.takeover and st.owner != ctx.job.id:
            outcome = await runtime.take_over(p.takeover)
            if outcome.kind != "ended":
                return {"session_id": sid, "takeover": p.takeover, "outcome": outcome.kind, "error": outcome.error}
            janitor = asyncio.create_task(_janitor(ctx.broker, sid))
        else:
            if st.owner and st.owner != ctx.job.id:
                # this job handed the session over (its worker died after that): nothing is left to do
                return {"session_id": sid, "handed_over": True, "owner": st.owner}
            if store.version > 0:
                st.epoch += 1
                log.info("session %s: capture taken over (epoch %d, next seq %d)", sid, st.epoch, st.next_seq)
            st.owner = ctx.job.id
            await store.save()
            session = SessionState(corrections=dict(p.corrections), gap_timeout_s=settings.gap_timeout_s)
            if await ctx.broker.kv_get(session_state_key(sid)) is None:
                await ctx.broker.kv_cas(session_state_key(sid), 0, session.to_dict())  # None: another worker made it
            janitor = asyncio.create_task(_janitor(ctx.broker, sid))
            if st.source_done:
                await _wait_for_end(ctx, sid, settings.finish_timeout_s)
                return _result(sid, st, "")
            outcome = await runtime.own()
        st = store.state  # the runtime reloads it (a takeover commits a new one)
        if outcome.kind == "handed_over":
            return {"session_id": sid, "segments": st.next_seq, "handed_over": outcome.swap_id}
        error = outcome.error
        if error:
            log.warning("session %s: source failed: %s", sid, error)
        st.source_done = True
        await store.save()
        await update_session(
            ctx.broker, sid, _source_ended(sid, st.next_seq, "error" if error else "end_of_source", error)
        )
        await _wait_for_end(ctx, sid, settings.finish_timeout_s)
        with contextlib.suppress(BrokerError):
            await ctx.broker.delete_stream(partials_stream(sid))  # nothing is drafted any more
        return _result(sid, st, error)
    except asyncio.CancelledError:
        if await _cancel_requested(ctx):
            with contextlib.suppress(CouchPotatoError, BrokerError, Abort):
                await asyncio.shield(update_session(ctx.broker, sid, _finish(sid, "cancelled")))
        raise
    except Exception as e:
        if ctx.last_try and store.state.owner == ctx.job.id:
            # No try is left to capture the rest: the session ends with what was captured (its
            # segments still commit) and says why, rather than never ending.
            error = f"capture failed on its last try ({ctx.job.tries} of {ctx.job.max_tries}): {one_line(e)[:300]}"
            log.warning("session %s: %s", sid, error)
            with contextlib.suppress(CouchPotatoError, BrokerError, Abort):
                await update_session(ctx.broker, sid, _source_ended(sid, store.state.next_seq, "error", error))
        raise
    finally:
        await runtime.close()
        if janitor is not None:
            janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await janitor


def _result(sid: str, st: CaptureState, error: str) -> dict[str, Any]:
    return {"session_id": sid, "segments": st.next_seq, "epochs": st.epoch + 1, "error": error or None}


@dataclass
class _JobHost:
    """What the capture job does for its ``SessionCapture``: fan segments out, start and cancel
    the new instance of a swap, report progress."""

    ctx: JobContext
    params: CaptureParams
    job_id: str
    worker: str

    async def emit(self, seg: AudioSegment) -> None:
        ctx, p = self.ctx, self.params
        key = audio_key(p.session_id, seg.segment.seq, seg.segment.epoch)
        await ctx.blobs.put(key, encode_pcm16(seg.samples))
        segment = replace(seg.segment, audio=key)
        await ctx.scheduler.enqueue(
            ASR_KIND,
            AsrParams(session_id=p.session_id, segment=segment.to_dict(), language=p.language, vocabulary=p.vocabulary),
            priority=PRIORITY_LIVE,
            idempotency_key=asr_job_key(p.session_id, segment.seq),
        )

    async def start_successor(self, swap_id: str) -> str:
        params = self.params.model_dump(mode="json")
        params["takeover"] = swap_id
        job = await self.ctx.scheduler.enqueue(
            CAPTURE_KIND, params, priority=PRIORITY_LIVE, idempotency_key=swap_job_key(self.params.session_id, swap_id)
        )
        return job.id

    async def cancel_job(self, job_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.ctx.scheduler.cancel(job_id)

    async def progress(self, audio_s: float, message: str) -> None:
        await self.ctx.progress(audio_s, None, message)


def _runtime(ctx: JobContext, p: CaptureParams, settings: TranscriptionSettings, store: CaptureStore) -> SessionCapture:
    mode = p.mode
    if mode == "auto" and store.state.source_kind:  # a later instance: resolved the way the first one was
        mode = "browser" if store.state.source_kind == "browser" else "direct"
    options = CaptureOptions(
        realtime=p.realtime,
        duration_s=p.duration_s,
        allow_local=settings.allow_local,
        mode=mode,
        no_audio_timeout_s=p.no_audio_timeout_s,
        silence_timeout_s=p.silence_timeout_s,
    )
    host = _JobHost(ctx, p, ctx.job.id, ctx.job.worker or "")
    drafter = None
    if settings.partials:
        drafter = JobDrafter(
            ctx.broker,
            p.session_id,
            settings.asr_model,
            settings.asr_threads,
            AsrOptions(language=p.language, vocabulary=tuple(p.vocabulary), draft=True),
        )
    return SessionCapture(
        broker=ctx.broker,
        session_id=p.session_id,
        spec=p.source,
        guard=UrlGuard.from_allowlist(settings.url_allowlist),
        options=options,
        segmenter=p.segmenter or None,
        host=host,
        store=store,
        settings=settings.swap_settings(),
        drain=current_drain(),
        drafter=drafter,
    )


async def _cancel_requested(ctx: JobContext) -> bool:
    with contextlib.suppress(Exception):
        job = await asyncio.shield(ctx.broker.get_job(ctx.job.id))
        return job is not None and job.cancel_requested
    return False


async def _janitor(broker: Broker, sid: str) -> None:
    """Gap seqs that stay missing past the gap timeout (their ASR job was lost for good)."""
    while True:
        await asyncio.sleep(SESSION_JANITOR_INTERVAL_S)
        try:
            await update_session(broker, sid, _expire(sid))
        except (BrokerError, Abort) as e:
            log.warning("session %s: janitor: %s", sid, e)


async def _wait_for_end(ctx: JobContext, sid: str, finish_timeout_s: float) -> None:
    """Wait for the ``end`` event; past the finish timeout, gap what is missing and end."""
    cur = await ctx.broker.kv_get(session_state_key(sid))
    if cur is None:
        return
    state = SessionState.from_dict(cur.value)
    deadline = (state.source_ended_at or time.time()) + finish_timeout_s
    cursor = "0"
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            await update_session(ctx.broker, sid, _finish(sid))
            return
        entries = await ctx.broker.read(transcript_stream(sid), cursor, count=1000, block_s=remaining)
        for entry in entries:
            cursor = entry.id
            if entry.data.get("type") == "end":
                return


# --- sessions whose capture job was lost ---------------------------------------------------------


@plugin.job("reap", max_tries=1, result_ttl_s=REAP_RESULT_TTL_S)
async def reap(ctx: JobContext, _p: NoParams) -> dict[str, Any]:
    """End the sessions whose capture job was dead-lettered while it owned them.

    A capture job whose worker dies is reclaimed and run again, up to its tries; a worker that dies
    during the last try leaves the job dead-lettered without running it, so nothing would end the
    session. This job (every 5 minutes, ``reap_lost_sessions``) ends it with reason ``error`` and the
    cause; segments already cut still commit, and what their ASR never delivers is gapped after
    the finish timeout, as the capture job would have done. The result lists the sessions moved on.
    """
    settings = ctx.settings
    assert isinstance(settings, TranscriptionSettings)
    ended: list[str] = []
    for job in await ctx.scheduler.dead_letters(limit=REAP_SCAN_LIMIT):
        if job.kind == CAPTURE_KIND and await _end_lost_session(ctx.broker, job, settings.finish_timeout_s):
            ended.append(str(job.params["session_id"]))
    return {"sessions": ended}


plugin.schedule("reap_lost_sessions", "*/5 * * * *", "reap")


async def _end_lost_session(broker: Broker, job: Job, finish_timeout_s: float) -> bool:
    """Move on the session ``job`` owned when it was dead-lettered; False if it is not ours to end."""
    sid = str(job.params.get("session_id", ""))
    store = CaptureStore(broker, sid)
    st = await store.load()
    if store.version == 0 or st.owner != job.id:
        return False  # never started, or another instance owns the session
    cur = await broker.kv_get(session_state_key(sid))
    state = SessionState.from_dict(cur.value) if cur is not None else None
    if state is None or state.ended:
        return False
    if state.total is None:
        if not st.source_done:
            st.source_done = True  # the job, if requeued, only waits for the end
            try:
                await store.save()
            except NotOwner:
                return False  # an instance is capturing after all
        why = job.error or "its worker stopped"
        error = f"the capture job was lost after {job.tries} of {job.max_tries} tries: {why}"[:400]
        log.warning("session %s: %s; ending the session", sid, error)
        await update_session(broker, sid, _source_ended(sid, st.next_seq, "error", error))
    elif time.time() >= (state.source_ended_at or 0.0) + finish_timeout_s:
        await update_session(broker, sid, _finish(sid))
    else:
        await update_session(broker, sid, _expire(sid))
    return True


# --- the ASR job --------------------------------------------------------------------------------


@plugin.job("asr", max_tries=LIVE_ASR_MAX_TRIES, priority=PRIORITY_LIVE)
async def asr(ctx: JobContext, p: AsrParams) -> dict[str, Any]:
    """Transcribe one segment and commit it to its session's transcript, in order."""
    settings = ctx.settings
    assert isinstance(settings, TranscriptionSettings)
    segment = Segment.from_dict(p.segment)
    cur = await ctx.broker.kv_get(session_state_key(p.session_id))
    if cur is not None:
        state = SessionState.from_dict(cur.value)
        if state.ended or segment.seq < state.reseq.next_seq or segment.seq in state.reseq.held:
            return {"seq": segment.seq, "words": None, "committed": 0, "duplicate": True}
    outcome: SegmentResult | SegmentFailure
    try:
        samples = decode_pcm16(await ctx.blobs.get(segment.audio))
        pool = await asr_pool(settings.asr_model, settings.asr_threads)
        words = await pool.transcribe(samples, AsrOptions(language=p.language, vocabulary=tuple(p.vocabulary)))
        shifted = tuple(w.shifted(segment.start) for w in words)
        outcome = SegmentResult(segment, shifted, pool.engine.name)
    except BlobNotFound:
        outcome = SegmentFailure(segment, "audio_missing")
    except AsrError as e:
        if not ctx.last_try:
            raise
        outcome = SegmentFailure(segment, f"asr_failed: {e}")
    ids = await update_session(ctx.broker, p.session_id, offer(outcome, p.session_id))
    if not settings.keep_audio and segment.audio:
        await ctx.blobs.delete(segment.audio)
    n_words = len(outcome.words) if isinstance(outcome, SegmentResult) else None
    return {"seq": segment.seq, "words": n_words, "committed": len(ids), "duplicate": False}


# --- for callers: start a session, read its transcript --------------------------------------------


async def start_session(
    scheduler: Scheduler,
    session_id: str,
    source: str,
    **options: Any,
) -> Job:
    """Enqueue the capture job of a session (idempotent per session id); bad options raise
    InvalidParams."""
    params = {"session_id": session_id, "source": source, **options}
    return await scheduler.enqueue(CAPTURE_KIND, params, idempotency_key=session_job_key(session_id))


async def transcript_events(
    broker: Broker, session_id: str, *, after: str = "0", follow: bool = True, block_s: float = 5.0
) -> AsyncIterator[tuple[str, Event]]:
    """A session's transcript events with their stream ids, from after ``after``; with ``follow``
    it waits for new ones and ends after the ``end`` event."""
    cursor = after or "0"
    while True:
        entries = await broker.read(transcript_stream(session_id), cursor, block_s=block_s if follow else None)
        for entry in entries:
            cursor = entry.id
            if is_swap_event(entry.data):
                continue  # HotPotato's swap events: api.swaps.swap_events reads them
            event = event_from_dict(entry.data)
            yield entry.id, event
            if isinstance(event, EndEvent):
                return
        if not follow and not entries:
            return


__all__ = [
    "ASR_KIND",
    "CAPTURE_KIND",
    "AsrParams",
    "CaptureParams",
    "SessionState",
    "TranscriptionSettings",
    "asr",
    "audio_key",
    "capture",
    "plugin",
    "start_session",
    "transcript_events",
    "update_session",
]
