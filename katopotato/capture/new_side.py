"""The new side of a swap (``take_over``): start the same source, align it to the session's clock,
wait for the old instance's cut, commit, then run as the owner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np

from couchpotato.capture import Capture, CaptureOptions
from couchpotato.constants import SAMPLE_RATE_HZ
from couchpotato.decoder import PcmChunk
from couchpotato.errors import CouchPotatoError
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
from hotpotato.errors import AlignmentError, SwapError
from hotpotato.records import SwapState
from hotpotato.swap import (
    ReferenceReader,
    aligned,
    complete,
    completed_event,
    fail,
    new_instance_turn,
    reference_stream,
)

from ..errors import NotOwner, one_line
from .constants import (
    ACCEPT_WAIT_S,
    SEEK_AHEAD_S,
    TIMESTAMP_WAIT_S,
    VERIFY_WAIT_S,
    WALLCLOCK_ERROR_MS,
)
from .host import Outcome
from .instance import contiguous
from .runtime import OwnerRuntime

log = logging.getLogger("katopotato.capture")


class NewSide(OwnerRuntime):
    """The new side of a swap (``take_over``): start the same source, align it to the session's
    clock, wait for the old instance's cut, commit, then run as the owner."""

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
        assert self.inst.chunks is not None
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
            mine = contiguous(buffer)
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
            waited = time.time() - (arrivals[0][1] if arrivals else self.inst.started_at)
            try:
                alignment = await asyncio.to_thread(
                    self._align_overlap, clock, ref, reference, mine, reader, arrivals, waited
                )
            except AlignmentError as e:
                last_error = str(e)
                continue
            self.inst.shift = alignment.offset
            from_sample = mine.start + self.inst.shift
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
            self.inst.shift = ref.session_sample(clock[1]) - clock[0]
        elif not self.inst.live and self.inst.kind in ("file", "http"):
            self.inst.shift = 0
        else:
            epoch = cap.media_epoch or time.time()
            self.inst.shift = round((epoch - (st.media_epoch or epoch)) * SAMPLE_RATE_HZ)

    def _resume_alignment(self, clock: tuple[int, float] | None, ref: ClockRef | None) -> Alignment:
        if (clock is not None and ref is not None) or (not self.inst.live and self.inst.kind in ("file", "http")):
            return align_timestamps(self.inst.shift, None, Audio(0, np.zeros(0, dtype=np.float32)))
        return align_wallclock(self.inst.shift, WALLCLOCK_ERROR_MS)

    async def _buffer_some(self, buffer: list[PcmChunk], arrivals: list[tuple[int, float]], wait_s: float) -> None:
        """Read what arrived within ``wait_s`` into ``buffer``."""
        assert self.inst.chunks is not None
        deadline = time.monotonic() + wait_s
        while True:
            left = deadline - time.monotonic()
            try:
                chunk = await self.inst.chunks.get(max(0.01, left))
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
        first = (buffer[0].start_sample + self.inst.shift) if buffer else cut_at
        lost_s = max(0, first - cut_at) / SAMPLE_RATE_HZ
        clock = await self.inst.cap.clock(0.1) if self.inst.cap is not None else None
        now = time.time()
        st.owner = self.host.job_id
        st.epoch += 1
        st.next_seq = next_seq
        st.resume_sample = cut_at
        st.handover = None
        st.source_kind = self.inst.kind
        st.clock = ClockRef(clock[0] + self.inst.shift, clock[1]).to_dict() if clock else None
        event = completed_event(swap, now=now, epoch=st.epoch, cut_sample=cut_at, next_seq=next_seq, lost_s=lost_s,
                                alignment=alignment.to_dict(), worker=self.host.worker)  # fmt: skip
        try:
            await self.store.save(entries=[event.to_dict()])
        except NotOwner:
            return False
        self.inst.trim_below = cut_at
        await self.swaps.update(complete(swap.id, now=now, lost_s=lost_s, alignment=alignment.to_dict(),
                                         worker=self.host.worker))  # fmt: skip
        log.info("session %s: swap %s completed: epoch %d from %.3f s, seq %d (lost %.3f s)", self.sid, swap.id,
                 st.epoch, cut_at / SAMPLE_RATE_HZ, next_seq, lost_s)  # fmt: skip
        return True


__all__ = ["NewSide"]
