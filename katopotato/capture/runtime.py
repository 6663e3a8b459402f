"""The owner's runtime: capture as the session's owner (fresh, or resumed after the last owner
died), cut segments, and on each tick supervise, answer a drain and follow a swap."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from couchpotato.constants import SAMPLE_RATE_HZ
from couchpotato.decoder import PcmChunk
from couchpotato.errors import CouchPotatoError
from couchpotato.segmenter import Segmenter
from hotpotato import constants as HC
from hotpotato.align import ClockRef

from ..errors import NotOwner
from .constants import (
    PROGRESS_INTERVAL_S,
    RECENT_S,
    TIMESTAMP_WAIT_S,
)
from .host import Outcome
from .instance import instance_failure
from .supervision import Supervision

log = logging.getLogger("katopotato.capture")


class OwnerRuntime(Supervision):
    """The owner's runtime: capture as the session's owner (fresh, or resumed after the last owner
    died), cut segments, and on each tick supervise, answer a drain and follow a swap."""

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
                return Outcome("ended", str(self.inst.capture_error) if self.inst.capture_error else "")
            if resuming:
                alignment = await self._place_resume(cap, first)
                lost = max(0, first.start_sample + self.inst.shift - st.resume_sample) / SAMPLE_RATE_HZ
                self.inst.trim_below = st.resume_sample
                await self._record_worker_lost(alignment, lost)
            else:
                self.inst.shift = 0
                clock = await cap.clock(TIMESTAMP_WAIT_S)
                st.clock = ClockRef(clock[0], clock[1]).to_dict() if clock else None
                st.source_kind = self.inst.kind
            await self._announce(cap)
            return await self._run_owner([first])

    async def _run_owner(self, pending: list[PcmChunk]) -> Outcome:
        """Cut segments from ``trim_below`` on, supervise, and serve swaps, until the source ends or
        another instance takes over."""
        st = self.store.state
        assert self.inst.chunks is not None and self.inst.cap is not None
        self.inst.segmenter = Segmenter(self.sid, self.segmenter_options, epoch=st.epoch, first_seq=st.next_seq)
        self.inst.before_cut, self.inst.primed = [], self.inst.trim_below <= 0
        if self.drain is not None:
            self.drain.accept_handover()
        try:
            for early in pending:
                await self._on_chunk(early)
            if self.inst.reached_limit:
                await self.inst.chunks.close()
                self.inst.chunks.done = True
                outcome = await self._source_ended()
                if outcome is not None:
                    return outcome
            while True:
                chunk: PcmChunk | None
                try:
                    chunk = await self.inst.chunks.get(HC.SUPERVISE_INTERVAL_S)
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
                    await self._maybe_draft()
                    if self.inst.reached_limit and not self.inst.ended:
                        await self.inst.chunks.close()
                        self.inst.chunks.done = True
                        outcome = await self._source_ended()
                        if outcome is not None:
                            return outcome
                outcome = await self._tick()
                if outcome is not None:
                    return outcome
        except NotOwner as e:
            log.info("session %s: %s; this instance stops", self.sid, e)
            return Outcome("handed_over", swap_id=self.inst.swap.id if self.inst.swap else "")
        finally:
            await self._drop_reference()

    async def _on_chunk(self, chunk: PcmChunk) -> None:
        """One chunk of this instance's audio, on its own clock."""
        assert self.inst.segmenter is not None
        start = chunk.start_sample + self.inst.shift
        samples = chunk.samples
        if self.limit is not None and start + len(samples) >= self.limit:
            samples = samples[: max(0, self.limit - start)]
            self.inst.reached_limit = True
        if not self.inst.primed and len(samples):
            # The first segment after a cut gets its lead-in context like any other: the audio just
            # before the cut, which may arrive only after ownership was taken (the new instance
            # can lag the old one by a few seconds).
            if start + len(samples) <= self.inst.trim_below:
                self.inst.before_cut.append(chunk)
                want = self.inst.segmenter.lead_in_samples()
                while sum(len(c.samples) for c in self.inst.before_cut[1:]) >= want:
                    self.inst.before_cut.pop(0)
                return
            lead_in = self._lead_in([*self.inst.before_cut, chunk], self.inst.segmenter.lead_in_samples())
            self.inst.before_cut, self.inst.primed = [], True
            if lead_in is not None:
                self.inst.segmenter.prime(lead_in)
        if not len(samples) or start + len(samples) <= self.inst.trim_below:
            return
        if start < self.inst.trim_below:
            samples = samples[self.inst.trim_below - start :]
            start = self.inst.trim_below
        mapped = PcmChunk(start, samples)
        self.inst.recent.append((start, samples, self.inst.audio_at or time.time()))
        while self.inst.recent and start - self.inst.recent[0][0] > RECENT_S * SAMPLE_RATE_HZ:
            self.inst.recent.popleft()
        if self.inst.publisher is not None:
            await self.inst.publisher.add(start, samples, self.inst.audio_at)
        self.inst.quiet.push(start, samples)
        loop = asyncio.get_running_loop()
        produced = await loop.run_in_executor(self._vad, self.inst.segmenter.push, mapped)
        self.inst.pushed_end = mapped.end_sample
        if self.inst.planner is not None and not self.inst.gate.closed:
            choice = self.inst.planner.choose(produced, self.inst.pushed_end, self.inst.quiet, time.time())
            if choice is not None:
                emit = list(produced[: choice.emit_first])
                rest = list(produced[choice.emit_first :])
                if choice.kind == "quiet":
                    emit += await loop.run_in_executor(self._vad, self.inst.segmenter.flush)
                for seg in emit:
                    await self._emit(seg)
                await self._cut(choice.sample, choice.kind)
                for seg in rest:
                    self.inst.gate.offer(seg)
                return
        for seg in produced:
            if self.inst.gate.offer(seg):
                await self._emit(seg)

    async def _maybe_draft(self) -> None:
        """Draft the open segment for the session's live viewers, if anybody follows its partials,
        it is time, and no draft runs; never during a swap (two instances would draft one seq)."""
        inst = self.inst
        if self.drafter is None or inst.segmenter is None or inst.swap is not None or inst.ended:
            return
        now = time.monotonic()
        if not inst.pacer.due(now, inst.segmenter.next_seq) or (inst.draft is not None and not inst.draft.done()):
            return
        if not await self.drafter.wanted():
            return
        seg = await asyncio.get_running_loop().run_in_executor(self._vad, inst.segmenter.open_audio)
        if seg is None or not inst.pacer.worth(seg.segment):
            return
        inst.pacer.started(now, seg.segment)
        inst.draft = asyncio.create_task(self.drafter.draft(seg))

    async def _source_ended(self) -> Outcome | None:
        """The source ended. None while a cut is pending (its outcome decides who ends it)."""
        self.inst.ended = True
        if self.inst.swap is not None and self.inst.gate.closed:
            return None  # the new instance may already own the session; wait for the outcome
        if self.inst.swap is not None:
            previous = self.inst.swap
            await self._fail_swap("the source ended during the swap")
            self.inst.swap, self.inst.planner = None, None
            await self._drop_reference(previous)
        return await self._finish()

    async def _capture_failed(self, e: CouchPotatoError) -> None:
        self.inst.capture_error = e
        log.warning("session %s: capture instance failed: %s", self.sid, e)
        if not self.settings.supervise or not instance_failure(e) or self.inst.audio_at is None:
            return
        if self.inst.swap is None or not self.inst.gate.closed:
            await self._failover("failover", f"capture failed: {e}", evidence_at=time.time())

    async def _tick(self) -> Outcome | None:
        now = time.time()
        await self._supervise(now)
        st = self.store.state
        monitor = self.inst.cap.monitor if self.inst.cap is not None else None
        if not st.heard_sound and monitor is not None and monitor.heard_sound:
            st.heard_sound = True  # a later instance of the session is not judged by the no-audio timeout
            await self.store.save()
        await self._drain_check()
        outcome = await self._follow_swap(now)
        if outcome is not None:
            return outcome
        if self.inst.ended and self.inst.swap is None:
            return await self._finish()
        if self.inst.capture_error is not None and self.inst.swap is None:
            # the instance is dead and no swap is running: try again, or end with its error
            if (
                not self.settings.supervise
                or not instance_failure(self.inst.capture_error)
                or self.inst.audio_at is None
            ):
                return await self._end_with_error()
            if self.inst.failovers >= HC.FAILOVER_ATTEMPTS:
                return await self._end_with_error()
            if now >= self.inst.next_failover_at:
                await self._failover("failover", f"capture failed: {self.inst.capture_error}", evidence_at=now)
        if now - self.inst.last_progress >= PROGRESS_INTERVAL_S:
            self.inst.last_progress = now
            audio_s = self.inst.pushed_end / SAMPLE_RATE_HZ
            await self.host.progress(audio_s, f"{self.store.state.next_seq} segments, {audio_s:.0f} s of audio")
        return None


__all__ = ["OwnerRuntime"]
