"""The capture job's runtime: one capture instance owning a session, supervised, and swapped.

``SessionCapture`` runs the core's ``Capture`` and ``Segmenter`` for a session's capture job and hands
each segment to the job (``Host.emit``: blob + ASR job). Around that loop it runs HotPotato:

- **supervision**: every ``SUPERVISE_INTERVAL_S`` a ``HealthProbe`` (last audio, bytes, level,
  processes including Chromium's renderer, FFmpeg error lines) goes to the ``Supervisor``; the
  probe and verdict are published under ``health:<session>`` every second. A ``broken`` verdict —
  or the capture raising an instance failure (FFmpeg killed, Chromium crashed; the decoder's own
  reconnects are off, the swap replaces them without losing the outage) — starts a **failover**: a
  ``resume`` swap whose cut is the last committed media time (for a source that cannot be read
  again — a page — the segmenter is flushed first, so what was captured up to the failure is kept).
- **the old side of a swap**: a ``requested`` swap (the API), a draining worker (SIGTERM: rolling
  deploy) or a failover enqueue the new instance as a capture job with ``takeover=<swap id>`` (any
  capture worker; a draining one claims nothing) and accept: ``swap_started``. The old instance
  publishes its audio as reference, keeps emitting segments until the new one is aligned, then
  cuts at a low-energy point (``hotpotato.cutover``), writes the cut into the capture state and
  holds back what its segmenter produces after it (``Gate``) until the outcome: dropped when the
  new instance commits, released when the swap fails.
- **the new side** (``take_over``): start the same source (a recorded one at the old instance's
  position, a live HLS stream back in its window when resuming), align (``hotpotato.align``:
  timestamps checked against the reference audio, or cross-correlation, or — resuming a source
  with neither — the wall clock), record ``aligned``, wait for the cut, commit (the capture state's
  compare-and-set moves ownership and appends ``swap_completed``), then run as the owner from the
  cut, epoch + 1, next seq.

The capture state ``capture:<session>`` (``CaptureState``) is written only by its owner, with
compare-and-set: a capture instance that lost ownership finds out at its next write
(``NotOwner``) and stops.

The capture state is ``capture.state``; the job's side is ``capture.host``; the API's swap
helpers are ``katopotato.api.swaps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from couchpotato.browser.errors import NoAudio
from couchpotato.capture import Capture, CaptureOptions
from couchpotato.constants import SAMPLE_RATE_HZ
from couchpotato.decoder import PcmChunk
from couchpotato.errors import (
    CouchPotatoError,
    NoAudioTrack,
    NotMedia,
    SourceError,
    SourceNotFound,
    UrlRefused,
)
from couchpotato.records import SessionEvent
from couchpotato.segmenter import AudioSegment, Segmenter
from couchpotato.source import probe_http
from couchpotato.urlguard import UrlGuard
from hotpotato import constants as HC
from hotpotato.align import (
    Alignment,
    Audio,
    ClockRef,
    align_timestamps,
    align_wallclock,
    align_xcorr,
    wallclock_prior,
)
from hotpotato.backfill import backfill_seconds, parse_live_window
from hotpotato.cutover import CutoverPlanner, Gate, QuietTracker, sample_of
from hotpotato.errors import AlignmentError, SwapError, SwapRefused
from hotpotato.records import SwapEvent, SwapState
from hotpotato.supervisor import HealthProbe, Supervisor, Verdict
from hotpotato.swap import (
    ReferencePublisher,
    ReferenceReader,
    SwapBroker,
    SwapStore,
    accept,
    aligned,
    complete,
    completed_event,
    cut,
    fail,
    new_instance_turn,
    new_swap_id,
    reference_stream,
)

from ..drain import Drain
from ..errors import NotOwner, one_line
from ..keys import capture_key, health_key, transcript_stream
from .host import Host, Outcome, SwapSettings
from .state import CaptureState, CaptureStore

log = logging.getLogger("katopotato.capture")

PROGRESS_INTERVAL_S = 2.0
HEALTH_TTL_S = 3600.0
ACCEPT_WAIT_S = 10.0  # a new instance waits this long for the old one to record the swap it enqueued
TIMESTAMP_WAIT_S = 5.0  # for FFmpeg to print the first sample's stream time
WALLCLOCK_ERROR_MS = 1000.0  # what placing a page by wall clock alone may be off by (0.73 s seen under load)
RESUME_SEEK_MARGIN_S = 0.5  # a recorded source is re-read from this much before the cut
SEEK_AHEAD_S = 0.5  # a recorded source's new instance starts this far ahead of the old one
RECENT_S = 8.0  # the old instance keeps this much of its audio, published first when a swap starts
START_GRACE_S = 5.0  # the old instance waits this much past the new one's own deadline
VERIFY_WAIT_S = 8.0  # timestamps are checked by the old instance's audio if it overlaps this soon after ours


def _instance_failure(e: BaseException) -> bool:
    """An error of the capture instance (worth another instance), not of the source itself."""
    if isinstance(e, NoAudio | NotMedia | NoAudioTrack | SourceNotFound | UrlRefused):
        return False
    return isinstance(e, SourceError)


def _can_reread(kind: str, live: bool) -> bool:
    """A new instance can read the source again from a past media time (recorded, or HLS backfill)."""
    return (not live and kind in ("file", "http")) or kind == "hls"


class _Chunks:
    """An async iterator of chunks read one at a time, with a timeout that does not lose a chunk."""

    def __init__(self, pcm: AsyncIterator[PcmChunk]) -> None:
        self._pcm = pcm
        self._next: asyncio.Future[PcmChunk] | None = None
        self.done = False

    async def get(self, timeout_s: float) -> PcmChunk | None:
        """The next chunk, or None after ``timeout_s``; raises StopAsyncIteration at the end and the
        capture's error if it failed (after which ``done`` is set)."""
        if self.done:
            await asyncio.sleep(timeout_s)
            return None
        if self._next is None:
            self._next = asyncio.ensure_future(anext(self._pcm))
        finished, _ = await asyncio.wait({self._next}, timeout=timeout_s)
        if not finished:
            return None
        fut, self._next = self._next, None
        try:
            return fut.result()
        except BaseException:
            self.done = True
            raise

    async def close(self) -> None:
        """Stop reading: the capture's processes (FFmpeg) stop now, not when garbage-collected."""
        if self._next is not None:
            self._next.cancel()
            await asyncio.gather(self._next, return_exceptions=True)
            self._next = None
        close = getattr(self._pcm, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


# --- the runtime ----------------------------------------------------------------------------------


class SessionCapture:
    """One capture instance of one session: owner, or new instance of a swap (see the module doc)."""

    def __init__(
        self,
        *,
        broker: SwapBroker,
        session_id: str,
        spec: str,
        guard: UrlGuard,
        options: CaptureOptions,
        segmenter: Mapping[str, float] | None,
        host: Host,
        store: CaptureStore,
        settings: SwapSettings | None = None,
        drain: Drain | None = None,
    ) -> None:
        self.broker = broker
        self.sid = session_id
        self.spec = spec
        self.guard = guard
        # duration_s counts on the session's clock, across instances: applied here, not by each Capture
        self.limit = round(options.duration_s * SAMPLE_RATE_HZ) if options.duration_s else None
        supervise = (settings or SwapSettings()).supervise
        self.options = replace(options, duration_s=None, reconnect_attempts=0 if supervise else None)
        self.segmenter_options = dict(segmenter or {}) or None
        self.host = host
        self.store = store
        self.settings = settings or SwapSettings()
        self.drain = drain
        self.swaps = SwapStore(broker, session_id, transcript_stream(session_id))
        self.supervisor = Supervisor(self.settings.supervisor)
        self.verdict: Verdict | None = None
        self._vad = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vad-{session_id}")
        # the instance's view of its audio
        self.cap: Capture | None = None
        self.chunks: _Chunks | None = None
        self.live = True
        self.kind = ""
        self.shift = 0  # session sample = local sample + shift
        self.trim_below = 0  # session samples before this are not ours to cut
        self.started_at = time.time()
        self.audio_at: float | None = None
        self.bytes_total = 0
        self.pushed_end = 0
        self.last_segment_at: float | None = None
        self.capture_error: CouchPotatoError | None = None
        self.ended = False
        self.reached_limit = False
        # the owner's swap state
        self.segmenter: Segmenter | None = None
        self.before_cut: list[PcmChunk] = []  # audio before trim_below, kept until the segmenter is primed
        self.primed = False
        self.gate: Gate[AudioSegment] = Gate()
        self.quiet = QuietTracker()
        self.recent: deque[tuple[int, np.ndarray, float]] = deque()  # (start, samples, arrived_at)
        self.swap: SwapState | None = None
        self.publisher: ReferencePublisher | None = None
        self.planner: CutoverPlanner | None = None
        self.failovers = 0
        self.next_failover_at = 0.0
        self.drain_handled = False
        self._health_version: int | None = None
        self._last_health = 0.0
        self._last_progress = 0.0

    async def close(self) -> None:
        if self.chunks is not None:
            await self.chunks.close()
        self._vad.shutdown(wait=False, cancel_futures=True)

    # --- entering a capture ---------------------------------------------------------------------

    async def _enter(
        self, stack: contextlib.AsyncExitStack, options: Callable[[Capture], Awaitable[CaptureOptions]]
    ) -> Capture:
        cap = await stack.enter_async_context(Capture(self.spec, self.guard, self.options))
        assert cap.source is not None
        self.kind, self.live = cap.source.kind, cap.source.live
        cap.options = await options(cap)
        if cap.browser is not None and cap.browser.recorder is not None and self.settings.supervise:
            cap.browser.recorder.decoder.reconnect_attempts = 0  # a failed recorder is failed over
        self.cap = cap
        self.chunks = _Chunks(cap.pcm())
        stack.push_async_callback(self._close_chunks)  # before the Capture's own exit
        self.started_at = time.time()
        return cap

    async def _close_chunks(self) -> None:
        if self.chunks is not None:
            await self.chunks.close()

    async def _direct_options(self, cap: Capture, **changes: Any) -> CaptureOptions:
        assert cap.source is not None
        timestamps = cap.source.kind not in ("stdin", "browser", "rtsp", "pulse")
        return replace(cap.options, timestamps=timestamps, **changes)

    async def _hls_start_index(self, cap: Capture, backfill_s: float) -> int | None:
        """``-live_start_index`` reaching ``backfill_s`` (a margin included) back into the live window."""
        assert cap.source is not None and cap.proxy is not None
        try:
            probe = await probe_http(cap.source.url, cap.proxy, cap.source.headers)
        except SourceError as e:
            log.warning("session %s: cannot read the HLS playlist for a backfill: %s", self.sid, e)
            return 0
        window = parse_live_window(probe.head.decode("utf-8", "replace"))
        if window is None:
            return 0
        if not window.covers(backfill_s - HC.HLS_BACKFILL_MARGIN_S):
            log.warning(
                "session %s: the live window holds %.1f s, %.1f s are missing: some audio is lost",
                self.sid, window.length_s, backfill_s - HC.HLS_BACKFILL_MARGIN_S,
            )  # fmt: skip
        return window.start_index(backfill_s)

    # --- the owner's entry point ----------------------------------------------------------------

    async def own(self) -> Outcome:
        """Capture as the session's owner: a fresh start, or a takeover after the last owner died."""
        st = self.store.state
        resuming = st.announced
        async with contextlib.AsyncExitStack() as stack:
            try:
                cap = await self._enter(stack, self._resume_options if resuming else self._direct_options)
            except CouchPotatoError as e:
                return Outcome("ended", str(e))
            first = await self._first_chunk()
            if first is None:
                return Outcome("ended", str(self.capture_error) if self.capture_error else "")
            if resuming:
                alignment = await self._place_resume(cap, first)
                lost = max(0, first.start_sample + self.shift - st.resume_sample) / SAMPLE_RATE_HZ
                self.trim_below = st.resume_sample
                await self._record_worker_lost(alignment, lost)
            else:
                self.shift = 0
                clock = await cap.clock(TIMESTAMP_WAIT_S)
                st.clock = ClockRef(clock[0], clock[1]).to_dict() if clock else None
                st.source_kind = self.kind
            await self._announce(cap)
            return await self._run_owner([first])

    async def _resume_options(self, cap: Capture, cut_sample: int | None = None) -> CaptureOptions:
        """Where a new instance starts reading to resume at ``cut_sample`` (default: the last
        committed point): a recorded source just before it, a live HLS stream back in its window."""
        st = self.store.state
        at = st.resume_sample if cut_sample is None else cut_sample
        if not self.live and self.kind in ("file", "http"):
            return await self._direct_options(cap, start_s=max(0.0, at / SAMPLE_RATE_HZ - RESUME_SEEK_MARGIN_S))
        if self.live and self.kind == "hls":
            need = backfill_seconds(time.time(), st.resume_wall or time.time(), HC.HLS_BACKFILL_MARGIN_S)
            return await self._direct_options(cap, live_start_index=await self._hls_start_index(cap, need))
        return await self._direct_options(cap)

    async def _first_chunk(self) -> PcmChunk | None:
        assert self.chunks is not None
        while True:
            try:
                chunk = await self.chunks.get(1.0)
            except StopAsyncIteration:
                return None
            except CouchPotatoError as e:
                self.capture_error = e
                return None
            if chunk is not None:
                self._arrived(chunk)
                return chunk

    async def _place_resume(self, cap: Capture, first: PcmChunk) -> Alignment:
        """Where a new instance sits when nothing overlaps: timestamps, the file position, or the
        wall clock."""
        st = self.store.state
        clock = await cap.clock(TIMESTAMP_WAIT_S)
        ref = ClockRef.from_dict(st.clock)
        if clock is not None and ref is not None:
            self.shift = ref.session_sample(clock[1]) - clock[0]
            alignment = align_timestamps(self.shift, None, Audio(first.start_sample, first.samples))
        elif not self.live and self.kind in ("file", "http"):
            self.shift = 0  # the session's clock of a recorded source is its position
            alignment = align_timestamps(0, None, Audio(first.start_sample, first.samples))
        else:
            epoch = cap.media_epoch or time.time()
            self.shift = round((epoch - (st.media_epoch or epoch)) * SAMPLE_RATE_HZ)
            alignment = align_wallclock(self.shift, WALLCLOCK_ERROR_MS)
        if clock is not None:
            st.clock = ClockRef(clock[0] + self.shift, clock[1]).to_dict()
        return alignment

    async def _record_worker_lost(self, alignment: Alignment, lost_s: float) -> None:
        """A reclaimed capture job resumed the session: report it like a swap."""
        now = time.time()
        st = self.store.state
        swap = SwapState(
            new_swap_id(), self.sid, "completed", "worker_lost",
            "the capture worker stopped renewing its lease; another worker took the session over",
            mode="resume", requested_at=now, started_at=now, finished_at=now, new_job=self.host.job_id,
            new_worker=self.host.worker, old_epoch=st.epoch - 1, cut_sample=st.resume_sample,
            next_seq=st.next_seq, lost_s=lost_s, alignment=alignment.to_dict(),
        )  # fmt: skip
        started = SwapEvent.of("swap_started", swap, now, st.epoch - 1, new_job=self.host.job_id)
        done = completed_event(swap, now=now, epoch=st.epoch, cut_sample=st.resume_sample, next_seq=st.next_seq,
                               lost_s=lost_s, alignment=alignment.to_dict(), worker=self.host.worker)  # fmt: skip
        await self.swaps.update(lambda _record: (swap, [started, done]))

    async def _announce(self, cap: Capture) -> None:
        st = self.store.state
        if not st.announced:
            st.media_epoch = cap.media_epoch or time.time()
            st.announced = True
            info = cap.info()
            event = SessionEvent(st.media_epoch, self.sid, info.spec, info.kind, info.reason)
            await self.store.save(entries=[event.to_dict()])
        else:
            await self.store.save()

    # --- the owner loop -------------------------------------------------------------------------

    async def _run_owner(self, pending: list[PcmChunk]) -> Outcome:
        """Cut segments from ``trim_below`` on, supervise, and serve swaps, until the source ends or
        another instance takes over."""
        st = self.store.state
        assert self.chunks is not None and self.cap is not None
        self.segmenter = Segmenter(self.sid, self.segmenter_options, epoch=st.epoch, first_seq=st.next_seq)
        self.before_cut, self.primed = [], self.trim_below <= 0
        if self.drain is not None:
            self.drain.accept_handover()
        try:
            for early in pending:
                await self._on_chunk(early)
            if self.reached_limit:
                await self.chunks.close()
                self.chunks.done = True
                outcome = await self._source_ended()
                if outcome is not None:
                    return outcome
            while True:
                chunk: PcmChunk | None
                try:
                    chunk = await self.chunks.get(HC.SUPERVISE_INTERVAL_S)
                except StopAsyncIteration:
                    outcome = await self._source_ended()
                    if outcome is not None:
                        return outcome
                    chunk = None
                except CouchPotatoError as e:
                    chunk = None
                    await self._capture_failed(e)
                if chunk is not None:
                    self._arrived(chunk)
                    await self._on_chunk(chunk)
                    if self.reached_limit and not self.ended:
                        await self.chunks.close()
                        self.chunks.done = True
                        outcome = await self._source_ended()
                        if outcome is not None:
                            return outcome
                outcome = await self._tick()
                if outcome is not None:
                    return outcome
        except NotOwner as e:
            log.info("session %s: %s; this instance stops", self.sid, e)
            return Outcome("handed_over", swap_id=self.swap.id if self.swap else "")
        finally:
            await self._drop_reference()

    def _lead_in(self, chunks: list[PcmChunk], want: int) -> PcmChunk | None:
        """Up to ``want`` samples of ``chunks`` (this instance's audio, in order) just before
        ``trim_below`` (session clock), contiguous up to it; None when they hold none."""
        pieces: list[np.ndarray] = []
        lo, end = self.trim_below - want, self.trim_below
        for chunk in reversed(chunks):
            start = chunk.start_sample + self.shift
            if start >= end:
                continue
            if start + len(chunk.samples) < end:
                break  # a hole just before what is collected: only the contiguous run counts
            pieces.append(chunk.samples[max(0, lo - start) : end - start])
            end = max(start, lo)
            if end <= lo:
                break
        if not pieces:
            return None
        samples = np.concatenate(pieces[::-1])
        return PcmChunk(self.trim_below - len(samples), samples) if len(samples) else None

    def _arrived(self, chunk: PcmChunk) -> None:
        self.audio_at = time.time()
        self.bytes_total += 2 * len(chunk.samples)

    async def _on_chunk(self, chunk: PcmChunk) -> None:
        """One chunk of this instance's audio, on its own clock."""
        assert self.segmenter is not None
        start = chunk.start_sample + self.shift
        samples = chunk.samples
        if self.limit is not None and start + len(samples) >= self.limit:
            samples = samples[: max(0, self.limit - start)]
            self.reached_limit = True
        if not self.primed and len(samples):
            # The first segment after a cut gets its lead-in context like any other: the audio just
            # before the cut, which may arrive only after ownership was taken (the new instance
            # can lag the old one by a few seconds).
            if start + len(samples) <= self.trim_below:
                self.before_cut.append(chunk)
                want = self.segmenter.lead_in_samples()
                while sum(len(c.samples) for c in self.before_cut[1:]) >= want:
                    self.before_cut.pop(0)
                return
            lead_in = self._lead_in([*self.before_cut, chunk], self.segmenter.lead_in_samples())
            self.before_cut, self.primed = [], True
            if lead_in is not None:
                self.segmenter.prime(lead_in)
        if not len(samples) or start + len(samples) <= self.trim_below:
            return
        if start < self.trim_below:
            samples = samples[self.trim_below - start :]
            start = self.trim_below
        mapped = PcmChunk(start, samples)
        self.recent.append((start, samples, self.audio_at or time.time()))
        while self.recent and start - self.recent[0][0] > RECENT_S * SAMPLE_RATE_HZ:
            self.recent.popleft()
        if self.publisher is not None:
            await self.publisher.add(start, samples, self.audio_at)
        self.quiet.push(start, samples)
        loop = asyncio.get_running_loop()
        produced = await loop.run_in_executor(self._vad, self.segmenter.push, mapped)
        self.pushed_end = mapped.end_sample
        if self.planner is not None and not self.gate.closed:
            choice = self.planner.choose(produced, self.pushed_end, self.quiet, time.time())
            if choice is not None:
                emit = list(produced[: choice.emit_first])
                rest = list(produced[choice.emit_first :])
                if choice.kind == "quiet":
                    emit += await loop.run_in_executor(self._vad, self.segmenter.flush)
                for seg in emit:
                    await self._emit(seg)
                await self._cut(choice.sample, choice.kind)
                for seg in rest:
                    self.gate.offer(seg)
                return
        for seg in produced:
            if self.gate.offer(seg):
                await self._emit(seg)

    async def _emit(self, seg: AudioSegment) -> None:
        st = self.store.state
        await self.host.emit(seg)
        st.next_seq = seg.segment.seq + 1
        keep_end = sample_of(seg.segment.keep_end)
        if keep_end > st.resume_sample:
            st.resume_sample = keep_end
            st.resume_wall = (self.audio_at or time.time()) - max(0, self.pushed_end - keep_end) / SAMPLE_RATE_HZ
        self.last_segment_at = time.time()
        await self.store.save()

    async def _source_ended(self) -> Outcome | None:
        """The source ended. None while a cut is pending (its outcome decides who ends it)."""
        self.ended = True
        if self.swap is not None and self.gate.closed:
            return None  # the new instance may already own the session; wait for the outcome
        if self.swap is not None:
            previous = self.swap
            await self._fail_swap("the source ended during the swap")
            self.swap, self.planner = None, None
            await self._drop_reference(previous)
        return await self._finish()

    async def _finish(self) -> Outcome:
        """End of the source: flush what is left (the gate is open) and end."""
        assert self.segmenter is not None
        loop = asyncio.get_running_loop()
        for seg in await loop.run_in_executor(self._vad, self.segmenter.flush):
            await self._emit(seg)
        return Outcome("ended", str(self.capture_error) if self.capture_error else "")

    async def _capture_failed(self, e: CouchPotatoError) -> None:
        self.capture_error = e
        log.warning("session %s: capture instance failed: %s", self.sid, e)
        if not self.settings.supervise or not _instance_failure(e) or self.audio_at is None:
            return
        if self.swap is None or not self.gate.closed:
            await self._failover("failover", f"capture failed: {e}", evidence_at=time.time())

    async def _tick(self) -> Outcome | None:
        now = time.time()
        await self._supervise(now)
        await self._drain_check()
        outcome = await self._follow_swap(now)
        if outcome is not None:
            return outcome
        if self.ended and self.swap is None:
            return await self._finish()
        if self.capture_error is not None and self.swap is None:
            # the instance is dead and no swap is running: try again, or end with its error
            if not self.settings.supervise or not _instance_failure(self.capture_error) or self.audio_at is None:
                return await self._end_with_error()
            if self.failovers >= HC.FAILOVER_ATTEMPTS:
                return await self._end_with_error()
            if now >= self.next_failover_at:
                await self._failover("failover", f"capture failed: {self.capture_error}", evidence_at=now)
        if now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            audio_s = self.pushed_end / SAMPLE_RATE_HZ
            await self.host.progress(audio_s, f"{self.store.state.next_seq} segments, {audio_s:.0f} s of audio")
        return None

    async def _end_with_error(self) -> Outcome:
        if self.gate.closed:
            for seg in self.gate.release():
                await self._emit(seg)
        return Outcome("ended", str(self.capture_error))

    # --- supervision ----------------------------------------------------------------------------

    def probe(self, now: float) -> HealthProbe:
        cap = self.cap
        assert cap is not None
        health = cap.health
        errors_total, last_error = cap.errors()
        return HealthProbe(
            at=now,
            started_at=self.started_at,
            audio_at=self.audio_at,
            media_s=self.pushed_end / SAMPLE_RATE_HZ,
            bytes_total=self.bytes_total,
            rms_dbfs=health.rms_dbfs if health is not None else None,
            silent_s=cap.monitor.silent_s if cap.monitor is not None else 0.0,
            alive=cap.alive() if self.capture_error is None else {**cap.alive(), "capture": False},
            errors_total=errors_total,
            last_error=last_error or (str(self.capture_error) if self.capture_error else ""),
            since_segment_s=None if self.last_segment_at is None else now - self.last_segment_at,
            live=self.live,
        )

    async def _supervise(self, now: float) -> None:
        probe = self.probe(now)
        previous = self.verdict
        self.verdict = self.supervisor.observe(probe)
        if previous is None or previous.state != self.verdict.state:
            quiet = {previous.state if previous else "ok", self.verdict.state} <= {"ok", "silent", "starting"}
            log.log(logging.DEBUG if quiet else logging.INFO, "session %s: health %s: %s", self.sid,
                    self.verdict.state, self.verdict.reason)  # fmt: skip
        if now - self._last_health >= HC.HEALTH_PUBLISH_INTERVAL_S:
            self._last_health = now
            await self._publish_health(probe, self.verdict)
        if (
            self.verdict.broken
            and self.settings.supervise
            and self.capture_error is None
            and (self.swap is None or (self.swap.mode == "overlap" and not self.gate.closed))
            and now >= self.next_failover_at
            and self.failovers < HC.FAILOVER_ATTEMPTS
        ):
            await self._failover("supervisor", self.verdict.reason, evidence_at=self.verdict.evidence_at)

    async def _publish_health(self, probe: HealthProbe, verdict: Verdict) -> None:
        value = {
            "session_id": self.sid,
            "instance": self.host.job_id,
            "worker": self.host.worker,
            "epoch": self.store.state.epoch,
            "source_kind": self.kind,
            "probe": probe.to_dict(),
            "verdict": verdict.to_dict(),
            "swap": self.swap.id if self.swap else None,
        }
        key = health_key(self.sid)
        for _ in range(2):
            if self._health_version is None:
                cur = await self.broker.kv_get(key)
                self._health_version = cur.version if cur is not None else 0
            if await self.broker.kv_cas(key, self._health_version, value, ttl_s=HEALTH_TTL_S) is not None:
                self._health_version += 1
                return
            self._health_version = None

    # --- the old side of a swap -----------------------------------------------------------------

    async def _drain_check(self) -> None:
        if self.drain is None or self.drain_handled or not self.drain.requested.is_set():
            return
        self.drain_handled = True
        if self.swap is not None:
            return  # one is in progress: its outcome decides (see _swap_over)
        if self.capture_error is not None:
            self.drain.hand_back()
            return
        try:
            reason = f"worker {self.host.worker} is shutting down (rolling deploy)"
            swap = SwapState(new_swap_id(), self.sid, "requested", "drain", reason, requested_at=time.time())
            await self._start_swap(swap, own=True)
        except SwapError as e:
            log.warning("session %s: cannot swap away from a draining worker: %s", self.sid, e)
            self.drain.hand_back()

    async def _start_swap(self, swap: SwapState, *, own: bool) -> None:
        """Accept ``swap`` (a requested one, or ``own``: decided here) as its old instance."""
        st = self.store.state
        job = await self.host.start_successor(swap.id)
        try:
            started = await self.swaps.update(
                accept(
                    swap,
                    own=own,
                    now=time.time(),
                    old_job=self.host.job_id,
                    new_job=job,
                    old_epoch=st.epoch,
                    old_position=self.pushed_end,
                    cut_sample=self.gate.cut if swap.mode == "resume" else None,
                    next_seq=st.next_seq if swap.mode == "resume" else None,
                )
            )
        except SwapError:
            await self.host.cancel_job(job)
            raise
        if started is None:
            await self.host.cancel_job(job)
            if own:
                raise SwapRefused("the swap record changed while the swap was being accepted")
            return
        self.swap = started
        log.info("session %s: swap %s started (%s: %s), new instance job %s", self.sid, swap.id, swap.trigger,
                 swap.reason, job)  # fmt: skip
        if started.mode == "overlap":
            # The new instance may start behind the old one (an HLS backlog): give it the recent past too.
            self.publisher = ReferencePublisher(self.broker, reference_stream(self.sid, swap.id))
            for start, samples, arrived_at in list(self.recent):
                await self.publisher.add(start, samples, arrived_at)

    async def _failover(self, trigger: str, reason: str, *, evidence_at: float | None) -> None:
        """This instance is broken: stop emitting at the last committed point (or, for a source that
        cannot be read again, what was captured so far) and swap to a new instance resuming there."""
        if self.swap is not None:
            previous = self.swap
            await self._fail_swap(f"the old instance broke during the swap: {reason}")
            self.swap, self.planner = None, None
            await self._drop_reference(previous)
        st = self.store.state
        now = time.time()
        self.failovers += 1
        self.next_failover_at = now + HC.FAILOVER_RETRY_S * self.failovers
        assert self.segmenter is not None
        if not _can_reread(self.kind, self.live):
            loop = asyncio.get_running_loop()
            for seg in await loop.run_in_executor(self._vad, self.segmenter.flush):
                await self._emit(seg)
            st.resume_sample = max(st.resume_sample, self.pushed_end)
        cut_at = st.resume_sample
        self.gate.close(cut_at)
        swap = SwapState(
            new_swap_id(), self.sid, "requested", trigger, reason, mode="resume", requested_at=now,
            detection_s=None if evidence_at is None else max(0.0, now - evidence_at),
        )  # fmt: skip
        st.handover = {"swap": swap.id, "cut": cut_at, "next_seq": st.next_seq}
        await self.store.save()
        log.warning("session %s: %s: failing over (swap %s, resume at %.2f s)", self.sid, reason, swap.id,
                    cut_at / SAMPLE_RATE_HZ)  # fmt: skip
        try:
            await self._start_swap(swap, own=True)
        except SwapError as e:
            log.warning("session %s: failover not started: %s", self.sid, e)
            await self._rollback()

    async def _follow_swap(self, now: float) -> Outcome | None:
        """Serve a requested swap, or follow the one in progress."""
        if self.swap is None:
            if self.capture_error is not None:
                return None
            current = await self.swaps.current()
            if current is not None and current.phase == "requested" and now - current.requested_at <= HC.REQUEST_TTL_S:
                await self._start_swap(current, own=False)
            return None
        current = await self.swaps.current()
        swap = self.swap
        if current is None or current.id != swap.id:
            return await self._swap_over(None, "the swap record was replaced")
        self.swap = current
        # the new instance gives up at start_timeout_s with its own reason; this is for one that never ran
        limit = self.settings.start_timeout_s + START_GRACE_S
        if current.phase == "starting" and now - (current.started_at or now) > limit:
            await self._fail_swap(f"the new instance was not aligned within {limit:.0f} s (did it start?)")
            return await self._swap_over(None, "timeout")
        if current.phase == "aligned" and self.planner is None and not self.gate.closed:
            assert current.from_sample is not None
            self.planner = CutoverPlanner(current.from_sample, now, timeout_s=self.settings.cutover_timeout_s)
        if self.planner is not None and not self.gate.closed and self.planner.timed_out(now):
            await self._fail_swap(f"no low-energy point to cut over at within {self.settings.cutover_timeout_s:.0f} s")
            return await self._swap_over(None, "no cut")
        if current.phase == "cut" and self.gate.closed:
            cap_state = await self.broker.kv_get(capture_key(self.sid))
            owner = CaptureState.from_dict(cap_state.value).owner if cap_state else ""
            if owner and owner != self.host.job_id:
                return await self._swap_over(current, "completed")
            limit = self.settings.start_timeout_s if current.mode == "resume" else self.settings.commit_timeout_s
            if now - (current.cut_at or now) > limit:
                if await self._rollback():
                    await self._fail_swap(f"the new instance did not take over within {limit:.0f} s")
                    return await self._swap_over(None, "commit timeout")
                return await self._swap_over(current, "completed")
        if current.phase == "completed":
            return await self._swap_over(current, "completed")
        if current.phase == "failed":
            return await self._swap_over(None, current.error)
        return None

    async def _cut(self, at: int, kind: str) -> None:
        """Stop emitting at ``at``: record the cut for the new instance to commit to."""
        assert self.swap is not None
        st = self.store.state
        self.gate.close(at)
        st.resume_sample = max(st.resume_sample, at)
        st.handover = {"swap": self.swap.id, "cut": at, "next_seq": st.next_seq}
        await self.store.save()
        await self.publisher_flush()
        updated = await self.swaps.update(cut(self.swap.id, now=time.time(), cut_sample=at, next_seq=st.next_seq))
        log.info("session %s: swap %s: cut over at %.3f s (%s), next seq %d", self.sid, self.swap.id,
                 at / SAMPLE_RATE_HZ, kind, st.next_seq)  # fmt: skip
        if updated is not None:
            self.swap = updated

    async def publisher_flush(self) -> None:
        if self.publisher is not None:
            await self.publisher.flush()

    async def _rollback(self) -> bool:
        """Take the cut back (the new instance did not commit); False if it did commit."""
        st = self.store.state
        st.handover = None
        try:
            await self.store.save()
        except NotOwner:
            await self.store.load()
            return False
        return True

    async def _fail_swap(self, error: str) -> None:
        if self.swap is None:
            return
        log.warning("session %s: swap %s failed: %s", self.sid, self.swap.id, error)
        if self.swap.phase != "failed":
            await self.swaps.update(fail(self.swap.id, now=time.time(), error=error))
        if self.swap.new_job:
            with contextlib.suppress(Exception):
                await self.host.cancel_job(self.swap.new_job)

    async def _swap_over(self, completed: SwapState | None, why: str) -> Outcome | None:
        """The swap ended: handed over (``completed``), or failed: carry on."""
        swap = self.swap
        self.swap, self.planner = None, None
        await self._drop_reference(swap)
        if completed is not None:
            cap_state = await self.broker.kv_get(capture_key(self.sid))
            owner = CaptureState.from_dict(cap_state.value).owner if cap_state else ""
            if owner != self.host.job_id:
                dropped = self.gate.drop()
                log.info("session %s: swap %s completed; %d held segment(s) dropped; handing over", self.sid,
                         completed.id, dropped)  # fmt: skip
                done = complete(completed.id, now=time.time(), lost_s=completed.lost_s,
                                alignment=completed.alignment, worker=completed.new_worker)  # fmt: skip
                await self.swaps.update(done)
                return Outcome("handed_over", swap_id=completed.id)
        # failed: take the cut back if one was made, release what was held
        if self.gate.closed:
            if self.store.state.handover is not None and not await self._rollback():
                return Outcome("handed_over", swap_id=swap.id if swap else "")
            held = self.gate.release()
            if held:
                log.info("session %s: releasing %d held segment(s)", self.sid, len(held))
            for seg in held:
                await self._emit(seg)
        log.info("session %s: swap %s over (%s); this instance carries on", self.sid, swap.id if swap else "?", why)
        if self.drain is not None and self.drain_handled:
            self.drain.hand_back()  # the worker is going away and nobody took the session: hand it back
        return None

    async def _drop_reference(self, swap: SwapState | None = None) -> None:
        swap = swap or self.swap
        if self.publisher is not None:
            self.publisher = None
            if swap is not None:
                with contextlib.suppress(Exception):
                    await self.broker.delete_stream(reference_stream(self.sid, swap.id))

    # --- the new side of a swap -----------------------------------------------------------------

    async def take_over(self, swap_id: str) -> Outcome:
        """Run as the new instance of swap ``swap_id``: start, align, commit, then own the session."""
        swap = await self._wait_accepted(swap_id)
        if swap is None:
            return Outcome("stale", swap_id=swap_id)
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    cap = await self._enter(stack, lambda c: self._successor_options(c, swap))
                except CouchPotatoError as e:
                    raise SwapError(f"the new instance could not start: {e}") from e
                buffer: list[PcmChunk] = []
                arrivals: list[tuple[int, float]] = []
                alignment = await self._align_new(cap, swap, buffer, arrivals)
                cut_swap = await self._wait_cut(swap_id, buffer, arrivals)
                if cut_swap is None:
                    return Outcome("failed", "the swap ended before the cut", swap_id)
                if not await self._commit(cut_swap, alignment, buffer):
                    raise SwapError("the new instance could not take ownership: the capture state changed at the cut")
                return await self._run_owner(buffer)
        except SwapError as e:
            await self.swaps.update(fail(swap_id, now=time.time(), error=str(e)))
            log.warning("session %s: swap %s failed on the new instance: %s", self.sid, swap_id, e)
            return Outcome("failed", str(e), swap_id)
        except Exception as e:
            # A fault here must not leave the old instance waiting out its timeout for a new one
            # that is gone: the swap fails now, with the reason, and the job fails as it would.
            log.exception("session %s: swap %s: the new instance crashed", self.sid, swap_id)
            with contextlib.suppress(Exception):
                crashed = f"the new instance crashed: {one_line(e)}"
                await self.swaps.update(fail(swap_id, now=time.time(), error=crashed))
            raise
        except asyncio.CancelledError:
            current = await asyncio.shield(self.swaps.current())
            if current is not None and current.id == swap_id and current.active:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.swaps.update(fail(swap_id, now=time.time(),
                                                                error="the new instance was stopped")))  # fmt: skip
            raise
        finally:
            with contextlib.suppress(Exception):
                await self.broker.delete_stream(reference_stream(self.sid, swap_id))

    async def _wait_accepted(self, swap_id: str) -> SwapState | None:
        """The swap once the old instance accepted it; None if it ended first or never came."""
        deadline = time.monotonic() + ACCEPT_WAIT_S
        while time.monotonic() < deadline:
            record, _version = await self.swaps.load()
            turn = new_instance_turn(record, swap_id)
            if turn == "over":
                return None
            if turn == "go":
                return record.current
            await asyncio.sleep(0.1)
        error = f"the swap was not accepted within {ACCEPT_WAIT_S:.0f} s of the new instance's start"
        log.warning("session %s: swap %s: %s; this instance stops", self.sid, swap_id, error)
        # accepted just now after all: fail it, so the old instance does not wait out its timeout for us
        await self.swaps.update(fail(swap_id, now=time.time(), error=error))
        return None

    async def _successor_options(self, cap: Capture, swap: SwapState) -> CaptureOptions:
        assert cap.source is not None
        if swap.mode == "resume":
            await self.store.load()
            return await self._resume_options(cap, swap.cut_sample)
        if not cap.source.live and cap.source.kind in ("file", "http"):
            elapsed = time.time() - (swap.old_position_at or time.time())
            start = (swap.old_position or 0) / SAMPLE_RATE_HZ + (elapsed if self.options.realtime else 0.0)
            return await self._direct_options(cap, start_s=max(0.0, start + SEEK_AHEAD_S))
        return await self._direct_options(cap)

    async def _align_new(
        self, cap: Capture, swap: SwapState, buffer: list[PcmChunk], arrivals: list[tuple[int, float]]
    ) -> Alignment:
        """Read audio until it is placed on the session's clock; records ``aligned`` (overlap)."""
        assert self.chunks is not None
        st = await self.store.load()
        ref = ClockRef.from_dict(st.clock)
        started = swap.started_at or time.time()
        reader = ReferenceReader(self.broker, reference_stream(self.sid, swap.id))
        clock: tuple[int, float] | None = None
        last_error = ""
        while True:
            if time.time() - started > self.settings.start_timeout_s:
                raise SwapError(f"not aligned within {self.settings.start_timeout_s:.0f} s: {last_error or 'no audio'}")
            await self._buffer_some(buffer, arrivals, 0.25)
            if not buffer:
                continue
            if clock is None and cap.options.timestamps:
                clock = await cap.clock(TIMESTAMP_WAIT_S)
            current = await self.swaps.current()
            if current is None or current.id != swap.id or current.phase in ("completed", "failed"):
                raise SwapError(f"the swap was ended by the old instance ({current.error if current else 'gone'})")
            mine = _contiguous(buffer)
            if swap.mode == "resume":
                self._place_from(cap, clock, ref, mine)
                alignment = self._resume_alignment(clock, ref)
                return alignment
            if mine.end - mine.start < self.settings.overlap_s * SAMPLE_RATE_HZ:
                continue
            await reader.poll()
            reference = reader.audio()
            # how long the timestamps have waited for the old instance's audio: from this instance's
            # first audio, not its start (FFmpeg can take seconds to start on a loaded machine)
            waited = time.time() - (arrivals[0][1] if arrivals else self.started_at)
            try:
                alignment = await asyncio.to_thread(
                    self._align_overlap, clock, ref, reference, mine, reader, arrivals, waited
                )
            except AlignmentError as e:
                last_error = str(e)
                continue
            self.shift = alignment.offset
            from_sample = mine.start + self.shift
            done = await self.swaps.update(aligned(swap.id, now=time.time(), alignment=alignment.to_dict(),
                                                   from_sample=from_sample, worker=self.host.worker))  # fmt: skip
            if done is None:
                raise SwapError("the swap was ended before the new instance was aligned")
            log.info("session %s: swap %s: aligned by %s (confidence %.3f, error %.2f ms), audio from %.3f s",
                     self.sid, swap.id, alignment.method, alignment.confidence, alignment.error_ms,
                     from_sample / SAMPLE_RATE_HZ)  # fmt: skip
            return alignment

    def _align_overlap(
        self,
        clock: tuple[int, float] | None,
        ref: ClockRef | None,
        reference: Audio | None,
        mine: Audio,
        reader: ReferenceReader,
        arrivals: list[tuple[int, float]],
        waited_s: float,
    ) -> Alignment:
        if clock is not None and ref is not None:
            offset = ref.session_sample(clock[1]) - clock[0]
            overlap = 0
            if reference is not None:
                overlap = min(reference.end, mine.end + offset) - max(reference.start, mine.start + offset)
            if overlap < self.settings.overlap_s * SAMPLE_RATE_HZ and waited_s < VERIFY_WAIT_S:
                raise AlignmentError("waiting for the old instance's audio to overlap, to check the timestamps")
            return align_timestamps(offset, reference, mine, self.settings.align)
        if reference is None or not reader.arrivals:
            raise AlignmentError("no reference audio from the old instance yet")
        prior = wallclock_prior(reader.arrivals, arrivals)
        return align_xcorr(reference, mine, prior, self.settings.align)

    def _place_from(self, cap: Capture, clock: tuple[int, float] | None, ref: ClockRef | None, mine: Audio) -> None:
        st = self.store.state
        if clock is not None and ref is not None:
            self.shift = ref.session_sample(clock[1]) - clock[0]
        elif not self.live and self.kind in ("file", "http"):
            self.shift = 0
        else:
            epoch = cap.media_epoch or time.time()
            self.shift = round((epoch - (st.media_epoch or epoch)) * SAMPLE_RATE_HZ)

    def _resume_alignment(self, clock: tuple[int, float] | None, ref: ClockRef | None) -> Alignment:
        if (clock is not None and ref is not None) or (not self.live and self.kind in ("file", "http")):
            return align_timestamps(self.shift, None, Audio(0, np.zeros(0, dtype=np.float32)))
        return align_wallclock(self.shift, WALLCLOCK_ERROR_MS)

    async def _buffer_some(self, buffer: list[PcmChunk], arrivals: list[tuple[int, float]], wait_s: float) -> None:
        """Read what arrived within ``wait_s`` into ``buffer``."""
        assert self.chunks is not None
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            try:
                chunk = await self.chunks.get(max(0.01, left))
            except StopAsyncIteration:
                raise SwapError("the source ended on the new instance before the cut-over") from None
            except CouchPotatoError as e:
                raise SwapError(f"the new instance failed: {e}") from e
            if chunk is not None:
                self._arrived(chunk)
                buffer.append(chunk)
                arrivals.append((chunk.end_sample, time.time()))
                if sum(len(c.samples) for c in buffer) > HC.MAX_BUFFER_S * SAMPLE_RATE_HZ:
                    raise SwapError(f"no cut-over within {HC.MAX_BUFFER_S:.0f} s of buffered audio")
            if left <= 0:
                return

    async def _wait_cut(
        self, swap_id: str, buffer: list[PcmChunk], arrivals: list[tuple[int, float]]
    ) -> SwapState | None:
        """Keep buffering until the old instance has cut (or the swap ended)."""
        while True:
            current = await self.swaps.current()
            if current is None or current.id != swap_id or current.phase in ("completed", "failed"):
                return None
            if current.phase == "cut":
                return current
            await self._buffer_some(buffer, arrivals, 0.2)

    async def _commit(self, swap: SwapState, alignment: Alignment, buffer: list[PcmChunk]) -> bool:
        """Take ownership at the cut (one compare-and-set with ``swap_completed``)."""
        st = await self.store.load()
        handover = st.handover
        if handover is None or handover.get("swap") != swap.id:
            return False
        cut_at, next_seq = int(handover["cut"]), int(handover["next_seq"])
        first = (buffer[0].start_sample + self.shift) if buffer else cut_at
        lost_s = max(0, first - cut_at) / SAMPLE_RATE_HZ
        clock = await self.cap.clock(0.1) if self.cap is not None else None
        now = time.time()
        st.owner = self.host.job_id
        st.epoch += 1
        st.next_seq = next_seq
        st.resume_sample = cut_at
        st.handover = None
        st.source_kind = self.kind
        st.clock = ClockRef(clock[0] + self.shift, clock[1]).to_dict() if clock else None
        event = completed_event(swap, now=now, epoch=st.epoch, cut_sample=cut_at, next_seq=next_seq, lost_s=lost_s,
                                alignment=alignment.to_dict(), worker=self.host.worker)  # fmt: skip
        try:
            await self.store.save(entries=[event.to_dict()])
        except NotOwner:
            return False
        self.trim_below = cut_at
        await self.swaps.update(complete(swap.id, now=now, lost_s=lost_s, alignment=alignment.to_dict(),
                                         worker=self.host.worker))  # fmt: skip
        log.info("session %s: swap %s completed: epoch %d from %.3f s, seq %d (lost %.3f s)", self.sid, swap.id,
                 st.epoch, cut_at / SAMPLE_RATE_HZ, next_seq, lost_s)  # fmt: skip
        return True


def _contiguous(buffer: list[PcmChunk]) -> Audio:
    """The buffered audio's last contiguous run (a new instance's clock does not jump)."""
    start = len(buffer) - 1
    while start > 0 and buffer[start - 1].end_sample == buffer[start].start_sample:
        start -= 1
    run = buffer[start:]
    return Audio(run[0].start_sample, np.concatenate([c.samples for c in run]))


__all__ = ["SessionCapture"]
