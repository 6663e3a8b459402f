"""The swap protocol: its shared state, its transitions, and the old instance's reference audio.

Two capture instances of one session, possibly on two workers, coordinate through the broker only:

- the **swap record** ``swap:<session>`` (``SwapRecord``), changed only by compare-and-set through
  ``SwapStore.update``; each transition checks the phase and swap id it expects, so a late or
  duplicate actor changes nothing, and the session events it produces (``swap_started``,
  ``swap_failed``) are appended to the session's transcript stream **in the same atomic step**;
- the **capture state** ``capture:<session>`` (owned by the orchestrator): ownership of the session
  passes from the old instance to the new one by one compare-and-set on it, which also appends
  ``swap_completed``. Exactly one of "the new instance commits" and "the old instance takes its
  cut back" can succeed, so a swap can never leave two owners or none;
- the old instance's **reference audio**, a stream ``swapaudio:<session>:<swap>`` of its recent PCM
  on the session's clock (16-bit, base64), which the new instance cross-correlates with its own.

The timeline of an overlapped swap (``mode="overlap"``):

1. ``requested`` (``request``; by the API) → the old instance enqueues the new instance as a job,
   accepts: ``starting`` (``accept``), and starts publishing reference audio. The new job may start
   before the accept is recorded, and waits for it (``new_instance_turn``). The supervisor and a
   draining worker skip ``requested`` and accept directly.
2. The new instance starts on the same source, aligns its audio (``align.py``) and records where
   it is and from which session sample it holds audio: ``aligned`` (``aligned``).
3. The old instance keeps emitting segments until a low-energy point at least a guard after that
   sample (``cutover.py``), stops emitting there, writes the cut into the capture state, and
   marks ``cut`` (``cut``).
4. The new instance commits (capture state CAS: owner, epoch + 1, next seq) and cuts segments from
   the cut on: ``completed`` (``complete``). The old instance sees the new owner and stops.

Any step not done in time, or refused (alignment not confident), is ``failed`` (``fail``): the new
instance stops, the old one carries on (releasing what it held back after a cut). When the old
instance is dead (``mode="resume"``), it accepts directly with its cut at the last committed media
time; the new instance resumes from there (backfilling an HLS live window) and commits.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from couchpotato.keyed import KeyedState, VersionedValue, Write, update_keyed
from couchpotato.pcm import decode_pcm16, encode_pcm16

from . import constants as C
from .align import Audio
from .errors import SwapRefused
from .records import SwapEvent, SwapRecord, SwapState

CAS_ATTEMPTS = 50


class Entry(Protocol):
    """A stream entry (the broker's ``StreamEntry``)."""

    @property
    def id(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


class SwapBroker(KeyedState, Protocol):
    """What the swap needs of the orchestrator's broker: keyed state with CAS (``KeyedState``), and
    streams."""

    async def append(self, stream: str, entries: Sequence[Mapping[str, Any]]) -> list[str]: ...

    async def read(
        self, stream: str, after: str = "0", *, count: int = 100, block_s: float | None = None
    ) -> Sequence[Entry]: ...

    async def delete_stream(self, stream: str) -> None: ...


def swap_key(session_id: str) -> str:
    return f"swap:{session_id}"


def reference_stream(session_id: str, swap_id: str) -> str:
    return f"swapaudio:{session_id}:{swap_id}"


def new_swap_id() -> str:
    return uuid.uuid4().hex[:12]


Change = Callable[[SwapRecord], tuple[SwapState, list[SwapEvent]] | None]


class SwapStore:
    """The swap record of one session, changed by compare-and-set; events go to ``events_stream``."""

    def __init__(self, broker: SwapBroker, session_id: str, events_stream: str) -> None:
        self.broker = broker
        self.session_id = session_id
        self.key = swap_key(session_id)
        self.events_stream = events_stream

    async def load(self) -> tuple[SwapRecord, int]:
        cur = await self.broker.kv_get(self.key)
        if cur is None:
            return SwapRecord(), 0
        return SwapRecord.from_dict(cur.value), cur.version

    async def current(self) -> SwapState | None:
        return (await self.load())[0].current

    async def update(self, change: Change) -> SwapState | None:
        """Apply ``change`` (a pure function of the record: the new current swap and its events,
        or None for no change) with compare-and-set, retried on conflict. The new swap, or None."""
        changed: list[SwapState] = []

        def write(cur: VersionedValue | None) -> Write | None:
            changed.clear()
            record = SwapRecord.from_dict(cur.value) if cur is not None else SwapRecord()
            out = change(record)
            if out is None:
                return None
            swap, events = out
            history = record.history
            old = record.current
            if old is not None and old.id != swap.id:
                history = (*history, old.summary())[-C.HISTORY_KEPT :]
            changed.append(swap)
            return Write(
                SwapRecord(swap, history).to_dict(),
                self.events_stream if events else None,
                [e.to_dict() for e in events],
            )

        def conflict() -> Exception:
            return SwapRefused(f"session {self.session_id}: the swap record kept changing")

        await update_keyed(self.broker, self.key, write, attempts=CAS_ATTEMPTS, conflict=conflict)
        return changed[0] if changed else None


# --- transitions: pure functions of the record --------------------------------------------------


def _stale(swap: SwapState, now: float) -> bool:
    """A request nobody accepted in time no longer blocks a new one."""
    return swap.phase == "requested" and now - swap.requested_at > C.REQUEST_TTL_S


def request(session_id: str, trigger: str, reason: str, now: float, swap_id: str | None = None) -> Change:
    """A new swap, ``requested``; refused while another is in progress."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = record.current
        if cur is not None and cur.active and not _stale(cur, now):
            raise SwapRefused(f"swap {cur.id} is already in progress ({cur.phase}, {cur.trigger}: {cur.reason})")
        swap = SwapState(swap_id or new_swap_id(), session_id, "requested", trigger, reason, requested_at=now)
        return swap, []

    return change


def accept(
    swap: SwapState,
    *,
    own: bool,
    now: float,
    old_job: str,
    new_job: str,
    old_epoch: int,
    old_position: int,
    cut_sample: int | None = None,
    next_seq: int | None = None,
) -> Change:
    """The old instance takes a swap on: a ``requested`` one (the API), or ``own``, decided by itself
    just now (supervisor, drain, failover; refused while another is in progress): ``starting`` and
    ``swap_started``. A resume-mode swap carries its cut and goes straight to ``cut``."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = record.current
        if own:
            if cur is not None and cur.active and not _stale(cur, now):
                raise SwapRefused(f"swap {cur.id} is already in progress ({cur.phase})")
        elif cur is None or cur.id != swap.id or cur.phase != "requested" or _stale(cur, now):
            return None
        started = swap.but(
            phase="cut" if swap.mode == "resume" else "starting",
            started_at=now,
            cut_at=now if swap.mode == "resume" else None,
            old_job=old_job,
            new_job=new_job,
            old_epoch=old_epoch,
            old_position=old_position,
            old_position_at=now,
            cut_sample=cut_sample,
            next_seq=next_seq,
        )
        details: dict[str, Any] = {"old_job": old_job, "new_job": new_job}
        if swap.detection_s is not None:
            details["detection_s"] = round(swap.detection_s, 3)
        if cut_sample is not None:
            details["cut_s"] = round(cut_sample / 16_000, 3)
        return started, [SwapEvent.of("swap_started", started, now, old_epoch, **details)]

    return change


def new_instance_turn(record: SwapRecord, swap_id: str) -> Literal["wait", "go", "over"]:
    """Where the new instance of swap ``swap_id`` stands when it starts.

    ``go``: the old instance accepted the swap (``starting``; ``cut`` for a resume). ``over``: the
    swap ended before the new instance could take part. ``wait``: not accepted yet. That includes a
    swap the record does not hold at all: the old instance records a swap it decided itself (a
    failover, the supervisor, a drain) only when it accepts it, after it has enqueued the new
    instance's job, which another worker may start first.
    """
    cur = record.current
    if cur is not None and cur.id == swap_id:
        if cur.phase in ("completed", "failed"):
            return "over"
        return "go" if cur.phase in ("starting", "cut") else "wait"
    if any(past.get("id") == swap_id for past in record.history):
        return "over"
    return "wait"


def _expect(record: SwapRecord, swap_id: str, *phases: str) -> SwapState | None:
    cur = record.current
    if cur is None or cur.id != swap_id or cur.phase not in phases:
        return None
    return cur


def aligned(swap_id: str, *, now: float, alignment: Mapping[str, Any], from_sample: int, worker: str) -> Change:
    """The new instance is aligned and holds audio from ``from_sample`` on."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = _expect(record, swap_id, "starting")
        if cur is None:
            return None
        return cur.but(phase="aligned", aligned_at=now, alignment=dict(alignment), from_sample=from_sample,
                       new_worker=worker), []  # fmt: skip

    return change


def cut(swap_id: str, *, now: float, cut_sample: int, next_seq: int) -> Change:
    """The old instance stopped emitting at ``cut_sample``; the new one cuts from ``next_seq``."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = _expect(record, swap_id, "starting", "aligned")
        if cur is None:
            return None
        return cur.but(phase="cut", cut_at=now, cut_sample=cut_sample, next_seq=next_seq), []

    return change


def complete(swap_id: str, *, now: float, lost_s: float, alignment: Mapping[str, Any] | None, worker: str) -> Change:
    """The new instance owns the session (its commit appended ``swap_completed``)."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = _expect(record, swap_id, "starting", "aligned", "cut", "failed")
        if cur is None:
            return None
        return cur.but(phase="completed", finished_at=now, lost_s=lost_s, error="", new_worker=worker,
                       alignment=dict(alignment) if alignment else cur.alignment), []  # fmt: skip

    return change


def fail(swap_id: str, *, now: float, error: str) -> Change:
    """The swap failed: ``failed`` and ``swap_failed``; the old instance carries on."""

    def change(record: SwapRecord) -> tuple[SwapState, list[SwapEvent]] | None:
        cur = _expect(record, swap_id, "requested", "starting", "aligned", "cut")
        if cur is None:
            return None
        failed = cur.but(phase="failed", finished_at=now, error=error)
        return failed, [SwapEvent.of("swap_failed", failed, now, cur.old_epoch, error=error, new_job=cur.new_job)]

    return change


def completed_event(swap: SwapState, *, now: float, epoch: int, cut_sample: int, next_seq: int, lost_s: float,
                    alignment: Mapping[str, Any] | None, worker: str) -> SwapEvent:  # fmt: skip
    """The ``swap_completed`` event the new instance appends with its commit."""
    details: dict[str, Any] = {
        "cut_s": round(cut_sample / 16_000, 3),
        "next_seq": next_seq,
        "lost_s": round(lost_s, 3),
        "alignment": dict(alignment) if alignment else None,
        "old_job": swap.old_job,
        "new_job": swap.new_job,
        "new_worker": worker,
        "takeover_s": round(now - (swap.started_at or swap.requested_at), 3),
    }
    if swap.detection_s is not None:
        details["detection_s"] = round(swap.detection_s, 3)
    return SwapEvent.of("swap_completed", swap, now, epoch, **details)


# --- the old instance's reference audio ---------------------------------------------------------


def encode_pcm(samples: np.ndarray) -> str:
    return base64.b64encode(encode_pcm16(samples)).decode("ascii")


def decode_pcm(text: str) -> np.ndarray:
    return decode_pcm16(base64.b64decode(text))


@dataclass
class ReferencePublisher:
    """Appends the old instance's audio (session clock) to the reference stream in batches, each
    entry ``{s: first sample, pcm: base64 s16le, at: when its last chunk arrived}``."""

    broker: SwapBroker
    stream: str
    max_samples: int = round(C.REFERENCE_MAX_S * 16_000)
    batch_samples: int = round(C.REFERENCE_BATCH_S * 16_000)
    published: int = 0
    _parts: list[np.ndarray] | None = None
    _start: int = 0
    _count: int = 0
    _at: float | None = None

    async def add(self, start: int, samples: np.ndarray, arrived_at: float | None = None) -> None:
        if self.published >= self.max_samples:
            return
        if self._parts is None or start != self._start + self._count:
            await self.flush()
            self._parts, self._start, self._count = [], start, 0
        assert self._parts is not None
        self._parts.append(samples)
        self._count += len(samples)
        self._at = arrived_at or time.time()
        if self._count >= self.batch_samples:
            await self.flush()

    async def flush(self) -> None:
        if not self._parts:
            self._parts = None
            return
        data = np.concatenate(self._parts)
        entry = {"s": self._start, "pcm": encode_pcm(data), "at": round(self._at or time.time(), 4)}
        self._parts, self._start, self._count = None, self._start + len(data), 0
        self.published += len(data)
        await self.broker.append(self.stream, [entry])


@dataclass
class ReferenceReader:
    """Reads the reference stream; ``audio()`` is the contiguous reference so far (the latest run,
    should the old instance's clock have jumped), ``arrivals`` its (end sample, arrived_at) pairs."""

    broker: SwapBroker
    stream: str
    cursor: str = "0"
    _parts: list[np.ndarray] | None = None
    _start: int = 0
    _end: int = 0
    arrivals: list[tuple[int, float]] | None = None

    async def poll(self) -> int:
        """Read what is new; how many samples were added."""
        added = 0
        while True:
            entries = await self.broker.read(self.stream, self.cursor, count=500)
            if not entries:
                return added
            for e in entries:
                self.cursor = e.id
                start = int(e.data["s"])
                pcm = decode_pcm(str(e.data["pcm"]))
                if self._parts is None or start != self._end:
                    self._parts, self._start, self._end, self.arrivals = [], start, start, []
                assert self._parts is not None and self.arrivals is not None
                self._parts.append(pcm)
                self._end = start + len(pcm)
                self.arrivals.append((self._end, float(e.data.get("at", 0.0))))
                added += len(pcm)

    def audio(self) -> Audio | None:
        if not self._parts:
            return None
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return Audio(self._start, self._parts[0])


__all__ = [
    "Change",
    "ReferencePublisher",
    "ReferenceReader",
    "SwapBroker",
    "SwapStore",
    "accept",
    "aligned",
    "complete",
    "completed_event",
    "cut",
    "decode_pcm",
    "encode_pcm",
    "fail",
    "new_instance_turn",
    "new_swap_id",
    "reference_stream",
    "request",
    "swap_key",
]
