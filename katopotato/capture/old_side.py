"""The old side of a swap: start it (a request, a drain, a failover), publish the reference audio,
cut in a pause, and follow the new instance to the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from couchpotato.constants import SAMPLE_RATE_HZ
from hotpotato import constants as HC
from hotpotato.cutover import CutoverPlanner
from hotpotato.errors import SwapError, SwapRefused
from hotpotato.records import SwapState
from hotpotato.swap import (
    ReferencePublisher,
    accept,
    complete,
    cut,
    fail,
    new_swap_id,
    reference_stream,
)

from ..errors import NotOwner
from ..keys import capture_key
from .constants import START_GRACE_S
from .host import Outcome
from .instance import CaptureBase, can_reread
from .state import CaptureState

log = logging.getLogger("katopotato.capture")


class OldSide(CaptureBase):
    """The old side of a swap: start it (a request, a drain, a failover), publish the reference
    audio, cut in a pause, and follow the new instance to the outcome."""

    async def _drain_check(self) -> None:
        if self.drain is None or self.inst.drain_handled or not self.drain.requested.is_set():
            return
        self.inst.drain_handled = True
        if self.inst.swap is not None:
            return  # one is in progress: its outcome decides (see _swap_over)
        if self.inst.capture_error is not None:
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
                    old_position=self.inst.pushed_end,
                    cut_sample=self.inst.gate.cut if swap.mode == "resume" else None,
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
        self.inst.swap = started
        log.info("session %s: swap %s started (%s: %s), new instance job %s", self.sid, swap.id, swap.trigger,
                 swap.reason, job)  # fmt: skip
        if started.mode == "overlap":
            # The new instance may start behind the old one (an HLS backlog): give it the recent past too.
            self.inst.publisher = ReferencePublisher(self.broker, reference_stream(self.sid, swap.id))
            for start, samples, arrived_at in list(self.inst.recent):
                await self.inst.publisher.add(start, samples, arrived_at)

    async def _failover(self, trigger: str, reason: str, *, evidence_at: float | None) -> None:
        """This instance is broken: stop emitting at the last committed point (or, for a source that
        cannot be read again, what was captured so far) and swap to a new instance resuming there."""
        if self.inst.swap is not None:
            previous = self.inst.swap
            await self._fail_swap(f"the old instance broke during the swap: {reason}")
            self.inst.swap, self.inst.planner = None, None
            await self._drop_reference(previous)
        st = self.store.state
        now = time.time()
        self.inst.failovers += 1
        self.inst.next_failover_at = now + HC.FAILOVER_RETRY_S * self.inst.failovers
        assert self.inst.segmenter is not None
        if not can_reread(self.inst.kind, self.inst.live):
            loop = asyncio.get_running_loop()
            for seg in await loop.run_in_executor(self._vad, self.inst.segmenter.flush):
                await self._emit(seg)
            st.resume_sample = max(st.resume_sample, self.inst.pushed_end)
        cut_at = st.resume_sample
        self.inst.gate.close(cut_at)
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
        if self.inst.swap is None:
            if self.inst.capture_error is not None:
                return None
            current = await self.swaps.current()
            if current is not None and current.phase == "requested" and now - current.requested_at <= HC.REQUEST_TTL_S:
                await self._start_swap(current, own=False)
            return None
        current = await self.swaps.current()
        swap = self.inst.swap
        if current is None or current.id != swap.id:
            return await self._swap_over(None, "the swap record was replaced")
        self.inst.swap = current
        # the new instance gives up at start_timeout_s with its own reason; this is for one that never ran
        limit = self.settings.start_timeout_s + START_GRACE_S
        if current.phase == "starting" and now - (current.started_at or now) > limit:
            await self._fail_swap(f"the new instance was not aligned within {limit:.0f} s (did it start?)")
            return await self._swap_over(None, "timeout")
        if current.phase == "aligned" and self.inst.planner is None and not self.inst.gate.closed:
            assert current.from_sample is not None
            self.inst.planner = CutoverPlanner(current.from_sample, now, timeout_s=self.settings.cutover_timeout_s)
        if self.inst.planner is not None and not self.inst.gate.closed and self.inst.planner.timed_out(now):
            await self._fail_swap(f"no low-energy point to cut over at within {self.settings.cutover_timeout_s:.0f} s")
            return await self._swap_over(None, "no cut")
        if current.phase == "cut" and self.inst.gate.closed:
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
        assert self.inst.swap is not None
        st = self.store.state
        self.inst.gate.close(at)
        st.resume_sample = max(st.resume_sample, at)
        st.handover = {"swap": self.inst.swap.id, "cut": at, "next_seq": st.next_seq}
        await self.store.save()
        await self.publisher_flush()
        updated = await self.swaps.update(cut(self.inst.swap.id, now=time.time(), cut_sample=at, next_seq=st.next_seq))
        log.info("session %s: swap %s: cut over at %.3f s (%s), next seq %d", self.sid, self.inst.swap.id,
                 at / SAMPLE_RATE_HZ, kind, st.next_seq)  # fmt: skip
        if updated is not None:
            self.inst.swap = updated

    async def publisher_flush(self) -> None:
        if self.inst.publisher is not None:
            await self.inst.publisher.flush()

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
        if self.inst.swap is None:
            return
        log.warning("session %s: swap %s failed: %s", self.sid, self.inst.swap.id, error)
        if self.inst.swap.phase != "failed":
            await self.swaps.update(fail(self.inst.swap.id, now=time.time(), error=error))
        if self.inst.swap.new_job:
            with contextlib.suppress(Exception):
                await self.host.cancel_job(self.inst.swap.new_job)

    async def _swap_over(self, completed: SwapState | None, why: str) -> Outcome | None:
        """The swap ended: handed over (``completed``), or failed: carry on."""
        swap = self.inst.swap
        self.inst.swap, self.inst.planner = None, None
        await self._drop_reference(swap)
        if completed is not None:
            cap_state = await self.broker.kv_get(capture_key(self.sid))
            owner = CaptureState.from_dict(cap_state.value).owner if cap_state else ""
            if owner != self.host.job_id:
                dropped = self.inst.gate.drop()
                log.info("session %s: swap %s completed; %d held segment(s) dropped; handing over", self.sid,
                         completed.id, dropped)  # fmt: skip
                done = complete(completed.id, now=time.time(), lost_s=completed.lost_s,
                                alignment=completed.alignment, worker=completed.new_worker)  # fmt: skip
                await self.swaps.update(done)
                return Outcome("handed_over", swap_id=completed.id)
        # failed: take the cut back if one was made, release what was held
        if self.inst.gate.closed:
            if self.store.state.handover is not None and not await self._rollback():
                return Outcome("handed_over", swap_id=swap.id if swap else "")
            held = self.inst.gate.release()
            if held:
                log.info("session %s: releasing %d held segment(s)", self.sid, len(held))
            for seg in held:
                await self._emit(seg)
        log.info("session %s: swap %s over (%s); this instance carries on", self.sid, swap.id if swap else "?", why)
        if self.drain is not None and self.inst.drain_handled:
            self.drain.hand_back()  # the worker is going away and nobody took the session: hand it back
        return None

    async def _drop_reference(self, swap: SwapState | None = None) -> None:
        swap = swap or self.inst.swap
        if self.inst.publisher is not None:
            self.inst.publisher = None
            if swap is not None:
                with contextlib.suppress(Exception):
                    await self.broker.delete_stream(reference_stream(self.sid, swap.id))


__all__ = ["OldSide"]
