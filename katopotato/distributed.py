"""Sessions on the job scheduler: the ``SessionRunner`` ``katopotato serve`` uses by default.

A session is one ``transcription.capture`` job (any capture worker: embedded in ``serve``, or a
``katopotato worker`` on another machine) and one ``transcription.asr`` job per segment (any
worker). The resequencer's state and the committed transcript live in the broker
(``transcription.py``); this runner connects them to the service's ``SessionStore``:

- ``start`` checks the options, resolves the source through the egress proxy (a refused URL is a
  400 and creates nothing; a source that cannot be captured is a 422), creates the session, and
  enqueues its capture job (``start_session``, idempotent per session id).
- a **tail** task per session reads the broker's transcript stream (as ``transcript_events`` does,
  also keeping its place past HotPotato's swap entries) from the last entry it recorded and calls
  ``SessionStore.record`` for each event, with the entry id, in one transaction
  (``sessions.stream_cursor``): a tail that restarts, here or in another process,
  resumes exactly after it, so nothing is recorded twice or skipped. Between events it follows the
  capture's health (``health:<id>``, published by the capture job every second), the segments cut
  but not committed (``capture:<id>``) and whether the job owning the capture is still alive;
  the ``end`` event (or the capture job dying without one) ends the session with
  ``SessionStore.finish``. When the session keeps audio, each committed segment's audio is copied
  from the blob store into the session's audio file (``AudioKeeper``), placed by media time; the
  segment blob is then deleted.
- ``stop`` sets the session's segment total to what the capture has cut so far (a compare-and-set
  on the broker's session state): the resequencer appends the ``end`` event once the in-flight
  segments are committed, and the capture job is cancelled after that (or after ``STOP_GRACE_S``,
  gapping what never came).
- ``recover`` re-attaches a tail to every session left active whose capture job the broker still
  has (Redis: its workers went on while the service was down, or take it back now), and marks
  ``interrupted`` only the sessions whose jobs are gone (the ``memory://`` broker died with the
  process).
- ``close``: with a shared broker, the tails stop and the sessions go on (their capture jobs are
  handed back to the queue by the draining workers, or keep running elsewhere). With ``memory://``
  nothing could continue them: each is ended like a stop (in-flight segments still commit) and
  marked ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from couchpotato.egress import EgressProxy
from couchpotato.errors import SerializationError as CoreSerializationError
from couchpotato.records import EndEvent, Event, GapEvent, Segment, SessionEvent, TranscriptEvent, event_from_dict
from couchpotato.resolve import resolve_source
from couchpotato.segmenter import LATENCY_PROFILES
from couchpotato.urlguard import UrlGuard
from hotpotato.records import is_swap_event

from .blobs import BlobStore
from .capture import CaptureState
from .constants import AUDIO_BLOB_PREFIX
from .errors import Abort, BlobError, BlobNotFound, BrokerError, JobNotFound, KatoPotatoError, SerializationError
from .jobs import Job, JobStatus
from .keys import asr_job_key, capture_key, health_key, session_job_key, transcript_stream
from .metrics import Metrics
from .scheduler import Scheduler
from .sessions import (
    SILENT_REPORT_S,
    AudioKeeper,
    BlobAudioKeeper,
    LiveInfo,
    SessionError,
    SessionRecord,
    SessionSpec,
    SessionStore,
    check_options,
)
from .transcription import SessionState, start_session, update_session

log = logging.getLogger(__name__)

TAIL_WAIT_S = 1.0  # a tail waits this long for a new entry before looking at health and liveness
HEALTH_INTERVAL_S = 1.0
LIVENESS_INTERVAL_S = 2.0
DEAD_GRACE_S = 2.0  # the capture job ended without an end event: read the stream once more, then end
STOP_GRACE_S = 15.0  # a stop waits this long for in-flight segments, then gaps them and ends
SHUTDOWN_GRACE_S = 4.0  # memory:// shutdown: in-flight segments get this long to commit
RETRY_S = 1.0  # after a broker or database failure, a tail tries again this soon
READ_BATCH = 200  # stream entries read at once
SHUTDOWN_MESSAGE = "the service stopped while the session ran"
RESTART_MESSAGE = "the service restarted while the session ran"


def health_of(record: dict[str, Any], current: str) -> str:
    """The session health a capture job's health record (``health:<id>``) means.

    The supervisor's verdicts map onto the service's words: ``ok``; ``silent`` once the silence
    lasted ``SILENT_REPORT_S`` (a pause between sentences is not news); ``degraded`` (error lines
    while audio flows); a ``broken`` capture is ``stalled`` when no audio arrives, ``dead`` when a
    process died. ``starting`` (no audio yet) keeps the current health.
    """
    verdict = record.get("verdict") or {}
    probe = record.get("probe") or {}
    state = verdict.get("state")
    if state == "ok":
        return "ok"
    if state == "silent":
        return "silent" if float(probe.get("silent_s") or 0.0) >= SILENT_REPORT_S else "ok"
    if state == "degraded":
        return "degraded"
    if state == "broken":
        return "stalled" if "no audio" in str(verdict.get("reason", "")) else "dead"
    return current


def _end_now(session_id: str, reason: str) -> Any:
    """A session-state update: gap every seq not committed yet and append the ``end`` event now
    (what the capture job does when it is cancelled; for a stop whose segments did not come)."""

    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended:
            return None
        if state.total is None:
            state.end_reason = reason
        held = state.reseq.held
        total = state.total if state.total is not None else state.reseq.next_seq + len(held)
        if held:
            total = max(total, max(held) + 1)
        state.total = total
        events = [e.to_dict() for e in state.resequencer(session_id).finish(total, time.time())]
        state.end_if_complete(events)
        return events

    return apply


def _stop_at(total: int, reason: str) -> Any:
    """A session-state update: the source counts as ended after ``total`` segments, with ``reason``;
    the resequencer appends the ``end`` event once every seq before it is committed."""

    def apply(state: SessionState) -> list[dict[str, Any]] | None:
        if state.ended or state.total is not None:
            return None
        state.total = max(total, state.reseq.next_seq)
        state.end_reason, state.error = reason, ""
        state.source_ended_at = time.time()
        events: list[dict[str, Any]] = []
        state.end_if_complete(events)
        return events

    return apply


@dataclass
class _Tail:
    """What this process knows of a session it tails."""

    spec: SessionSpec
    job_id: str | None
    cursor: str | None
    task: asyncio.Task[None] | None = None
    seen: str | None = None  # the last stream entry read (swap entries included)
    health: str = "unknown"
    media_epoch: float | None = None
    duration_s: float = 0.0
    accounted_s: float = 0.0
    next_seq: int = 0
    queue_depth: int = 0
    level_dbfs: float | None = None
    owner: str | None = None
    stop_reason: str | None = None  # "stopped" or "interrupted": this process asked for the end
    stop_deadline: float | None = None
    cancelled: bool = False
    dead_since: float | None = None
    health_at: float = 0.0
    silent_s: float | None = None
    liveness_at: float = 0.0
    keeper: AudioKeeper | BlobAudioKeeper | None = None
    done: bool = False

    @property
    def session_id(self) -> str:
        return self.spec.id


class DistributedRunner:
    """Runs sessions as scheduler jobs (see the module docstring).

    Attributes:
        store: where everything is recorded.
        scheduler: enqueues the capture jobs; its broker holds the transcript streams.
        blobs: the blob store the capture job writes segment audio to.
        guard: the URL guard sources are resolved through.
        model: the ASR model's name, to refuse languages an English-only model cannot do.
        blobs_dir: the directory of a ``file://`` blob store, where kept audio goes into one file
            per session (None: kept audio stays in ``blobs``, a blob per segment, see
            ``BlobAudioKeeper``).
        shared_broker: the broker outlives this process (Redis): sessions are left running at
            close and re-attached by ``recover``.
    """

    def __init__(
        self,
        store: SessionStore,
        scheduler: Scheduler,
        blobs: BlobStore,
        guard: UrlGuard,
        *,
        model: str,
        blobs_dir: Path | None = None,
        shared_broker: bool = False,
        metrics: Metrics | None = None,
        stop_grace_s: float = STOP_GRACE_S,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.broker = scheduler.broker
        self.blobs = blobs
        self.guard = guard
        self.model = model
        self.blobs_dir = blobs_dir
        self.shared_broker = shared_broker
        self.metrics = metrics
        self.stop_grace_s = stop_grace_s
        self.shutdown_grace_s = shutdown_grace_s
        self._tails: dict[str, _Tail] = {}
        self._closing = False

    # --- the SessionRunner protocol -----------------------------------------------------------

    async def start(self, spec: SessionSpec, *, created_by: str = "") -> SessionRecord:
        if self._closing:
            raise SessionError("the service is shutting down")
        check_options(spec, self.model)
        async with EgressProxy(self.guard) as proxy:
            source = await resolve_source(spec.url, self.guard, proxy, mode=spec.mode, allow_local=False)
        await self.store.create(spec, source_kind=source.kind, source_reason=source.reason, created_by=created_by)
        try:
            job = await start_session(
                self.scheduler,
                spec.id,
                spec.url,
                realtime=spec.realtime,
                language=spec.language,
                vocabulary=list(spec.vocabulary),
                segmenter=LATENCY_PROFILES[spec.latency],
                mode=spec.mode,
                no_audio_timeout_s=spec.no_audio_timeout_s,
                silence_timeout_s=spec.silence_timeout_s,
            )
        except KatoPotatoError as e:
            error = f"the session could not be scheduled: {e}"
            log.warning("session %s: %s", spec.id, error)
            await self.store.finish(spec.id, "failed", EndEvent("error", error, 0), error=error)
            raise SessionError(error) from e
        await self.store.set_job(spec.id, job.id)
        self._attach(spec, job.id, None)
        return await self.store.require(spec.id)

    async def stop(self, session_id: str) -> bool:
        """Stop a session wherever its capture runs; False when it had ended."""
        record = await self.store.get(session_id)
        if record is None or not record.active:
            return False
        if record.status != "stopping":
            await self.store.set_status(session_id, "stopping")
        tail = self._tails.get(session_id)
        if tail is not None and tail.stop_reason is None:
            tail.stop_reason = "stopped"
            tail.stop_deadline = time.monotonic() + self.stop_grace_s
        await self._end_capture(session_id, record.job_id, "stopped")
        return True

    def live(self, session_id: str) -> LiveInfo | None:
        t = self._tails.get(session_id)
        if t is None:
            return None
        return LiveInfo(t.health, t.duration_s, t.queue_depth, 0.0, t.level_dbfs, t.silent_s)

    def running(self) -> list[str]:
        return list(self._tails)

    async def recover(self) -> list[str]:
        """Re-attach to the sessions a previous process left active whose capture job the broker
        still has; interrupt the others. Returns the interrupted ones."""
        interrupted = []
        for sid in await self.store.active_ids():
            record = await self.store.get(sid)
            if record is None:
                continue
            job = await self._capture_job(record)
            if job is None:
                await self.store.interrupt(sid, RESTART_MESSAGE)
                interrupted.append(sid)
                continue
            spec = SessionSpec(
                url=record.url,
                mode=record.mode,  # type: ignore[arg-type]
                realtime=record.realtime,
                language=record.language,
                vocabulary=record.vocabulary,
                latency=record.latency,
                title=record.title,
                keep_audio=record.keep_audio,
                id=sid,
            )
            tail = self._attach(spec, job.id, record.stream_cursor)
            tail.media_epoch = record.media_epoch
            tail.health = record.health
            tail.duration_s = tail.accounted_s = record.duration_s
            tail.next_seq = (record.committed_seq + 1) if record.committed_seq is not None else 0
            if record.status == "stopping":
                tail.stop_reason = "stopped"
                tail.stop_deadline = time.monotonic() + self.stop_grace_s
            log.info("session %s: re-attached to capture job %s (%s)", sid, job.id, job.status.value)
        return interrupted

    async def close(self) -> None:
        """Stop taking sessions; see the module docstring for what happens to the running ones."""
        self._closing = True
        tails = list(self._tails.values())
        if not tails:
            return
        if not self.shared_broker:
            deadline = time.monotonic() + self.shutdown_grace_s
            for t in tails:
                if t.stop_reason is None:
                    t.stop_reason = "interrupted"
                    t.stop_deadline = deadline
                with contextlib.suppress(KatoPotatoError, SQLAlchemyError):
                    await self._end_capture(t.session_id, t.job_id, "interrupted")
            running = [t.task for t in tails if t.task is not None and not t.task.done()]
            if running:
                await asyncio.wait(running, timeout=self.shutdown_grace_s + 2 * LIVENESS_INTERVAL_S + 1.0)
        for t in tails:
            if t.task is not None and not t.task.done():
                t.task.cancel()
        await asyncio.gather(*(t.task for t in tails if t.task is not None), return_exceptions=True)
        if not self.shared_broker:
            for t in tails:
                if not t.done:
                    with contextlib.suppress(SQLAlchemyError):
                        await self.store.interrupt(t.session_id, SHUTDOWN_MESSAGE)
                await self._cancel_capture(t)

    # --- tails --------------------------------------------------------------------------------

    def _attach(self, spec: SessionSpec, job_id: str | None, cursor: str | None) -> _Tail:
        tail = _Tail(spec, job_id, cursor, seen=cursor)
        if spec.keep_audio and self.blobs_dir is not None:
            tail.keeper = AudioKeeper(AudioKeeper.path_for(self.blobs_dir, spec.id))
        elif spec.keep_audio:  # S3: each segment's audio stays in the store, under the session
            tail.keeper = BlobAudioKeeper(self.blobs, spec.id)
        self._tails[spec.id] = tail
        tail.task = asyncio.create_task(self._tail(tail), name=f"session-{spec.id}-tail")
        return tail

    async def _capture_job(self, record: SessionRecord) -> Job | None:
        if record.job_id:
            return await self.broker.get_job(record.job_id)
        return await self.broker.find_job(session_job_key(record.id))

    async def _tail(self, t: _Tail) -> None:
        sid = t.session_id
        stream = transcript_stream(sid)
        try:
            while not t.done:
                try:
                    # transcript_events' reading; HotPotato's swap entries are not transcript events:
                    # they are logged as the session's swap events (the API, console and SSE show them)
                    entries = await self.broker.read(stream, t.seen or "0", count=READ_BATCH, block_s=TAIL_WAIT_S)
                    for entry in entries:
                        if is_swap_event(entry.data):
                            await self._on_swap(t, entry.id, dict(entry.data))
                        else:
                            await self._on_event(t, entry.id, event_from_dict(entry.data))
                        t.seen = entry.id
                        if t.done:
                            return
                    await self._check(t)
                except (BrokerError, SQLAlchemyError, OSError) as e:
                    log.warning("session %s: %s; trying again in %.0f s", sid, e, RETRY_S)
                    await asyncio.sleep(RETRY_S)
                except (SerializationError, CoreSerializationError) as e:  # no reader can decode it: a bug
                    log.error("session %s: unreadable transcript entry after %s: %s", sid, t.seen, e)
                    await self._end(t, "failed", f"internal error: unreadable transcript ({e})")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug: the session fails, the service goes on
            log.exception("session %s: the tail failed", sid)
            with contextlib.suppress(Exception):
                await self._end(t, "failed", f"internal error: {type(e).__name__}: {e}")
        finally:
            if self._tails.get(sid) is t:
                del self._tails[sid]
            if t.keeper is not None:
                with contextlib.suppress(OSError):
                    await t.keeper.flush()

    async def _on_swap(self, t: _Tail, entry_id: str, data: dict[str, Any]) -> None:
        """A HotPotato decision (``swap_started``, ``swap_completed``, ``swap_failed``): logged as the
        session's event, counted in the metrics."""
        await self.store.note(t.session_id, data, cursor=entry_id)
        t.cursor = entry_id
        if self.metrics is not None:
            self.metrics.swaps.labels(str(data.get("type")), str(data.get("trigger", "unknown"))).inc()

    async def _on_event(self, t: _Tail, entry_id: str, event: Event) -> None:
        sid = t.session_id
        if isinstance(event, EndEvent):
            await self._finish(t, event)
            t.cursor = entry_id
            return
        if isinstance(event, TranscriptEvent | GapEvent):
            t.duration_s = max(t.duration_s, event.end)
        await self.store.record(sid, event, duration_s=t.duration_s, cursor=entry_id)
        t.cursor = entry_id
        if isinstance(event, SessionEvent):
            t.media_epoch = event.media_epoch
            if t.health == "unknown":
                t.health = "ok"  # the session event comes with the first audio
            if t.stop_reason is None:
                await self.store.set_status(sid, "running", health=t.health)
        elif isinstance(event, TranscriptEvent | GapEvent):
            t.next_seq = event.seq + 1
            self._account(t, event)
            await self._segment_audio(t, event.seq)

    async def _check(self, t: _Tail) -> None:
        """The stop deadline, health and queue depth, liveness of the capture; each at its pace."""
        now = time.monotonic()
        sid = t.session_id
        if t.stop_deadline is not None and now >= t.stop_deadline and not t.cancelled:
            log.warning("session %s: in-flight segments did not commit in time; gapping them", sid)
            with contextlib.suppress(Abort):
                await update_session(self.broker, sid, _end_now(sid, t.stop_reason or "stopped"))
            await self._cancel_capture(t)
            return  # the end event is in the stream now: read it
        if now - t.health_at >= HEALTH_INTERVAL_S:
            t.health_at = now
            await self._check_health(t)
        if now - t.liveness_at < LIVENESS_INTERVAL_S:
            return
        t.liveness_at = now
        owner = t.owner or t.job_id
        job = await self.broker.get_job(owner) if owner else None
        if job is not None and job.progress is not None:
            t.duration_s = max(t.duration_s, job.progress.done)
        if job is not None and not job.status.terminal:
            t.dead_since = None
            return
        if t.dead_since is None:
            t.dead_since = now
            return
        if now - t.dead_since < DEAD_GRACE_S:
            return
        # the job owning the capture ended (or is gone) and no end event followed
        if job is None:
            await self._end(t, "failed", "the session's capture job is gone from the broker")
        elif job.status is JobStatus.FAILED:
            await self._end(t, "failed", job.error or "the capture job failed")
        elif job.status is JobStatus.CANCELLED:
            await self._end(t, "stopped", "")
        else:
            await self._end(t, "completed", "")

    async def _check_health(self, t: _Tail) -> None:
        sid = t.session_id
        rec = await self.broker.kv_get(health_key(sid))
        if rec is not None:
            probe = rec.value.get("probe") or {}
            media_s = probe.get("media_s")
            if isinstance(media_s, int | float):
                t.duration_s = max(t.duration_s, float(media_s))
            level = probe.get("rms_dbfs")
            t.level_dbfs = float(level) if isinstance(level, int | float) else None
            health = health_of(rec.value, t.health)
            quiet = probe.get("silent_s")
            t.silent_s = round(float(quiet), 1) if health == "silent" and isinstance(quiet, int | float) else None
            if t.media_epoch is not None and t.stop_reason is None and health != t.health:
                t.health = health
                await self.store.set_status(sid, "running", health=health, silent_s=t.silent_s)
        cap = await self.broker.kv_get(capture_key(sid))
        if cap is not None:
            try:
                st = CaptureState.from_dict(cap.value)
            except (KeyError, TypeError, ValueError):
                return
            t.queue_depth = max(0, st.next_seq - t.next_seq)
            t.owner = st.owner or t.owner

    async def _finish(self, t: _Tail, end: EndEvent) -> None:
        """The broker's ``end`` event arrived: the session's final status and end."""
        record = await self.store.get(t.session_id)
        asked = t.stop_reason
        if asked is None and record is not None and record.status == "stopping":
            asked = "stopped"
        if asked is None and end.reason in ("stopped", "cancelled", "interrupted"):
            asked = "interrupted" if end.reason == "interrupted" else "stopped"
        if asked is not None:
            await self._end(t, asked, SHUTDOWN_MESSAGE if asked == "interrupted" else "", end=end)
        elif end.reason == "error" or end.error:
            await self._end(t, "failed", end.error or "the source failed", end=end)
        else:
            await self._end(t, "completed", "", end=end)

    async def _end(self, t: _Tail, status: str, error: str, *, end: EndEvent | None = None) -> None:
        """Record the final status and the end event, then release what the session held."""
        sid = t.session_id
        record = await self.store.get(sid)
        segments = (record.committed_seq + 1) if record is not None and record.committed_seq is not None else 0
        if end is not None:
            segments = max(segments, end.segments)
        if status == "completed":
            final = replace(end, segments=segments) if end is not None else EndEvent("end_of_source", "", segments)
        elif status == "failed":
            final = EndEvent("error", error, segments) if end is None else replace(end, segments=segments)
        else:
            final = EndEvent(status, error, segments)
        await self.store.finish(sid, status, final, error=error or None, duration_s=t.duration_s or None)
        t.done = True
        self._account(t, None)
        if status in ("stopped", "interrupted"):
            await self._cancel_capture(t)
        if t.keeper is not None:
            await t.keeper.flush()
        await self._drop_audio(t)  # what was kept is in the audio file; the rest was never committed

    async def _end_capture(self, session_id: str, job_id: str | None, reason: str) -> None:
        """End a session at the segments cut so far: they are still transcribed and committed."""
        cap = await self.broker.kv_get(capture_key(session_id))
        if cap is not None:
            try:
                total = CaptureState.from_dict(cap.value).next_seq
                await update_session(self.broker, session_id, _stop_at(total, reason))
                return
            except Abort:
                pass  # the capture has not set the session up yet
            except (KeyError, TypeError, ValueError) as e:
                log.warning("session %s: unreadable capture state: %s", session_id, e)
        # nothing was captured yet: a queued job is cancelled at once, a starting one stops
        if job_id:
            with contextlib.suppress(JobNotFound):
                await self.scheduler.cancel(job_id)

    async def _cancel_capture(self, t: _Tail) -> None:
        t.cancelled = True
        for job_id in {j for j in (t.owner, t.job_id) if j}:
            with contextlib.suppress(JobNotFound, BrokerError):
                job = await self.broker.get_job(job_id)
                if job is not None and not job.status.terminal:
                    await self.scheduler.cancel(job_id)

    # --- audio --------------------------------------------------------------------------------

    async def _segment_audio(self, t: _Tail, seq: int) -> None:
        """Keep a committed segment's audio in the session's audio file (when it keeps audio) and
        delete its blob; the capture job's ASR job for that seq names the blob and its media time."""
        job = await self.broker.find_job(asr_job_key(t.session_id, seq))
        if job is None:
            return
        try:
            segment = Segment.from_dict(job.params["segment"])
        except (KeyError, TypeError, ValueError, SerializationError):
            return
        if not segment.audio:
            return
        if t.keeper is not None:
            try:
                data = await self.blobs.get(segment.audio)
            except BlobNotFound:
                return  # the worker's settings do not keep audio, or it was kept already
            rate = AudioKeeper.rate_hz
            at = round(segment.start * rate)
            if isinstance(t.keeper, BlobAudioKeeper):  # a blob per segment: only the span it owns,
                lo = round(segment.keep_start * rate)  # its lead-in and overlap are its neighbours'
                data = data[(lo - at) * 2 : (round(segment.keep_end * rate) - at) * 2]
                at = lo
            try:
                await t.keeper.write_pcm16(at, data)
            except (OSError, BlobError) as e:
                log.warning("session %s: cannot keep audio any more: %s", t.session_id, e)
                t.keeper = None
                return
        await self.blobs.delete(segment.audio)

    async def _drop_audio(self, t: _Tail) -> None:
        with contextlib.suppress(KatoPotatoError, OSError):
            for blob in await self.blobs.list(f"{AUDIO_BLOB_PREFIX}{t.session_id}/"):
                await self.blobs.delete(blob.key)

    def _account(self, t: _Tail, event: TranscriptEvent | GapEvent | None) -> None:
        m = self.metrics
        if m is None:
            return
        m.audio_seconds.inc(max(0.0, t.duration_s - t.accounted_s))
        t.accounted_s = max(t.accounted_s, t.duration_s)
        if event is not None:
            m.segments.labels(event.type).inc()
            if t.media_epoch is not None:
                m.commit_latency.observe(max(0.0, time.time() - (t.media_epoch + event.end)))


__all__ = ["DistributedRunner", "health_of"]
