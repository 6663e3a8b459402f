"""A capture instance: its record (``Instance``), its wiring and what every side of it does
(``CaptureBase``: start the capture, read its audio, emit segments, finish)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
from couchpotato.partials import DraftPacer
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
)
from hotpotato.backfill import backfill_seconds, parse_live_window
from hotpotato.cutover import CutoverPlanner, Gate, QuietTracker, sample_of
from hotpotato.records import SwapEvent, SwapState
from hotpotato.supervisor import Supervisor, Verdict
from hotpotato.swap import (
    ReferencePublisher,
    SwapBroker,
    SwapStore,
    completed_event,
    new_swap_id,
)

from ..drain import Drain
from ..keys import transcript_stream
from .constants import (
    RESUME_SEEK_MARGIN_S,
    TIMESTAMP_WAIT_S,
    WALLCLOCK_ERROR_MS,
)
from .host import Drafter, Host, Outcome, SwapSettings
from .state import CaptureStore

log = logging.getLogger("katopotato.capture")


def instance_failure(e: BaseException) -> bool:
    """An error of the capture instance (worth another instance), not of the source itself."""
    if isinstance(e, NoAudio | NotMedia | NoAudioTrack | SourceNotFound | UrlRefused):
        return False
    return isinstance(e, SourceError)


def can_reread(kind: str, live: bool) -> bool:
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


def contiguous(buffer: list[PcmChunk]) -> Audio:
    """The buffered audio's last contiguous run (a new instance's clock does not jump)."""
    start = len(buffer) - 1
    while start > 0 and buffer[start - 1].end_sample == buffer[start].start_sample:
        start -= 1
    run = buffer[start:]
    return Audio(run[0].start_sample, np.concatenate([c.samples for c in run]))


@dataclass
class Instance:
    """Everything about a capture instance that changes while it runs, in one record.

    Attributes:
        cap: the running ``Capture`` (None before it started).
        chunks: its PCM, read one chunk at a time.
        live: the source is live.
        kind: the source's kind (file, http, hls, browser…).
        shift: session sample = this instance's sample + ``shift``.
        trim_below: session samples before this are not this instance's to cut.
        started_at: when this instance's capture started (Unix time).
        audio_at: when the last audio arrived (monotonic), None before any.
        bytes_total: PCM bytes read so far.
        pushed_end: session sample up to which audio went into the segmenter.
        last_segment_at: when the last segment was cut (monotonic).
        capture_error: the capture's failure, once it failed.
        ended: the source ended.
        reached_limit: the session's ``duration_s`` was reached.
        segmenter: the owner's segmenter (None until it owns the session).
        before_cut: audio before ``trim_below``, kept until the segmenter is primed.
        primed: the segmenter has its lead-in.
        gate: holds the segments cut after a swap's cut until its outcome.
        quiet: recent audio levels, to cut a swap in a pause.
        recent: the last ``RECENT_S`` of audio ``(start, samples, arrived_at)``, published first when
            a swap starts.
        swap: the swap this instance takes part in, as the old side.
        publisher: publishes this instance's audio as the reference of that swap.
        planner: chooses that swap's low-energy cut.
        failovers: failovers started by this instance.
        next_failover_at: no failover before this (monotonic).
        drain_handled: the worker's drain was answered.
        verdict: the supervisor's last verdict.
        health_version: the version of ``health:<session>`` last written.
        last_health: when health was last published (monotonic).
        last_progress: when progress was last reported (monotonic).
        pacer: when the open segment is drafted next (interim text).
        draft: the draft running now, if any.
    """

    cap: Capture | None = None
    chunks: _Chunks | None = None
    live: bool = True
    kind: str = ""
    shift: int = 0
    trim_below: int = 0
    started_at: float = field(default_factory=time.time)
    audio_at: float | None = None
    bytes_total: int = 0
    pushed_end: int = 0
    last_segment_at: float | None = None
    capture_error: CouchPotatoError | None = None
    ended: bool = False
    reached_limit: bool = False
    segmenter: Segmenter | None = None
    before_cut: list[PcmChunk] = field(default_factory=list)
    primed: bool = False
    gate: Gate[AudioSegment] = field(default_factory=Gate)
    quiet: QuietTracker = field(default_factory=QuietTracker)
    recent: deque[tuple[int, np.ndarray, float]] = field(default_factory=deque)
    swap: SwapState | None = None
    publisher: ReferencePublisher | None = None
    planner: CutoverPlanner | None = None
    failovers: int = 0
    next_failover_at: float = 0.0
    drain_handled: bool = False
    verdict: Verdict | None = None
    health_version: int | None = None
    last_health: float = 0.0
    last_progress: float = 0.0
    pacer: DraftPacer = field(default_factory=DraftPacer)
    draft: asyncio.Task[None] | None = None


class CaptureBase:
    """A capture instance's wiring (broker, session, source, host, store, settings) and its
    ``Instance`` record; starting its ``Capture``, placing a resumed one, emitting segments."""

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
        drafter: Drafter | None = None,
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
        self.drafter = drafter
        self.swaps = SwapStore(broker, session_id, transcript_stream(session_id))
        self.supervisor = Supervisor(self.settings.supervisor)
        self._vad = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"vad-{session_id}")
        self.inst = Instance()  # everything that changes while this instance runs

    async def close(self) -> None:
        if self.inst.draft is not None:
            self.inst.draft.cancel()
            await asyncio.gather(self.inst.draft, return_exceptions=True)
        if self.inst.chunks is not None:
            await self.inst.chunks.close()
        self._vad.shutdown(wait=False, cancel_futures=True)

    async def _enter(
        self, stack: contextlib.AsyncExitStack, options: Callable[[Capture], Awaitable[CaptureOptions]]
    ) -> Capture:
        cap = await stack.enter_async_context(Capture(self.spec, self.guard, self.options))
        assert cap.source is not None
        self.inst.kind, self.inst.live = cap.source.kind, cap.source.live
        cap.options = await options(cap)
        st = self.store.state
        if st.heard_sound or st.next_seq > 0:  # the session has had sound: a pause is not no_audio
            cap.options = replace(cap.options, heard_sound=True)
        if cap.browser is not None and cap.browser.recorder is not None and self.settings.supervise:
            cap.browser.recorder.decoder.reconnect_attempts = 0  # a failed recorder is failed over
        self.inst.cap = cap
        self.inst.chunks = _Chunks(cap.pcm())
        stack.push_async_callback(self._close_chunks)  # before the Capture's own exit
        self.inst.started_at = time.time()
        return cap

    async def _close_chunks(self) -> None:
        if self.inst.chunks is not None:
            await self.inst.chunks.close()

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

    async def _resume_options(self, cap: Capture, cut_sample: int | None = None) -> CaptureOptions:
        """Where a new instance starts reading to resume at ``cut_sample`` (default: the last
        committed point): a recorded source just before it, a live HLS stream back in its window."""
        st = self.store.state
        at = st.resume_sample if cut_sample is None else cut_sample
        if not self.inst.live and self.inst.kind in ("file", "http"):
            return await self._direct_options(cap, start_s=max(0.0, at / SAMPLE_RATE_HZ - RESUME_SEEK_MARGIN_S))
        if self.inst.live and self.inst.kind == "hls":
            need = backfill_seconds(time.time(), st.resume_wall or time.time(), HC.HLS_BACKFILL_MARGIN_S)
            return await self._direct_options(cap, live_start_index=await self._hls_start_index(cap, need))
        return await self._direct_options(cap)

    async def _first_chunk(self) -> PcmChunk | None:
        assert self.inst.chunks is not None
        while True:
            try:
                chunk = await self.inst.chunks.get(1.0)
            except StopAsyncIteration:
                return None
            except CouchPotatoError as e:
                self.inst.capture_error = e
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
            self.inst.shift = ref.session_sample(clock[1]) - clock[0]
            alignment = align_timestamps(self.inst.shift, None, Audio(first.start_sample, first.samples))
        elif not self.inst.live and self.inst.kind in ("file", "http"):
            self.inst.shift = 0  # the session's clock of a recorded source is its position
            alignment = align_timestamps(0, None, Audio(first.start_sample, first.samples))
        else:
            epoch = cap.media_epoch or time.time()
            self.inst.shift = round((epoch - (st.media_epoch or epoch)) * SAMPLE_RATE_HZ)
            alignment = align_wallclock(self.inst.shift, WALLCLOCK_ERROR_MS)
        if clock is not None:
            st.clock = ClockRef(clock[0] + self.inst.shift, clock[1]).to_dict()
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

    def _lead_in(self, chunks: list[PcmChunk], want: int) -> PcmChunk | None:
        """Up to ``want`` samples of ``chunks`` (this instance's audio, in order) just before
        ``trim_below`` (session clock), contiguous up to it; None when they hold none."""
        pieces: list[np.ndarray] = []
        lo, end = self.inst.trim_below - want, self.inst.trim_below
        for chunk in reversed(chunks):
            start = chunk.start_sample + self.inst.shift
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
        return PcmChunk(self.inst.trim_below - len(samples), samples) if len(samples) else None

    def _arrived(self, chunk: PcmChunk) -> None:
        self.inst.audio_at = time.time()
        self.inst.bytes_total += 2 * len(chunk.samples)

    async def _emit(self, seg: AudioSegment) -> None:
        st = self.store.state
        await self.host.emit(seg)
        st.next_seq = seg.segment.seq + 1
        keep_end = sample_of(seg.segment.keep_end)
        if keep_end > st.resume_sample:
            st.resume_sample = keep_end
            st.resume_wall = (self.inst.audio_at or time.time()) - max(
                0, self.inst.pushed_end - keep_end
            ) / SAMPLE_RATE_HZ
        self.inst.last_segment_at = time.time()
        await self.store.save()

    async def _finish(self) -> Outcome:
        """End of the source: flush what is left (the gate is open) and end."""
        assert self.inst.segmenter is not None
        loop = asyncio.get_running_loop()
        for seg in await loop.run_in_executor(self._vad, self.inst.segmenter.flush):
            await self._emit(seg)
        return Outcome("ended", str(self.inst.capture_error) if self.inst.capture_error else "")

    async def _end_with_error(self) -> Outcome:
        if self.inst.gate.closed:
            for seg in self.inst.gate.release():
                await self._emit(seg)
        return Outcome("ended", str(self.inst.capture_error))


__all__ = ["CaptureBase", "Instance", "can_reread", "contiguous", "instance_failure"]
