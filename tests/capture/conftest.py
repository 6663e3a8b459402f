"""What the capture package's tests share: a fake host (the job's side, recorded instead of done),
the memory broker, and capture instances of one session built on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from couchpotato.capture import CaptureOptions
from couchpotato.constants import SAMPLE_RATE_HZ
from couchpotato.records import Segment
from couchpotato.segmenter import AudioSegment
from couchpotato.urlguard import UrlGuard
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore, SessionCapture, SwapSettings
from katopotato.drain import Drain

SID = "cap1"


@dataclass
class FakeHost:
    """The job's side of a capture instance, recorded instead of done."""

    job_id: str = "job-1"
    worker: str = "worker-1"
    segments: list[AudioSegment] = field(default_factory=list)
    successors: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    progress_s: list[float] = field(default_factory=list)

    async def emit(self, seg: AudioSegment) -> None:
        self.segments.append(seg)

    async def start_successor(self, swap_id: str) -> str:
        self.successors.append(swap_id)
        return f"job-for-{swap_id}"

    async def cancel_job(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    async def progress(self, audio_s: float, message: str) -> None:
        self.progress_s.append(audio_s)


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    async with MemoryBroker() as b:
        yield b


def make_capture(
    broker: MemoryBroker,
    host: FakeHost,
    spec: str | Path = "/nonexistent.wav",
    *,
    options: CaptureOptions | None = None,
    settings: SwapSettings | None = None,
    drain: Drain | None = None,
) -> SessionCapture:
    """A capture instance of session ``SID`` (nothing starts until ``own`` or ``take_over``)."""
    return SessionCapture(
        broker=broker,
        session_id=SID,
        spec=str(spec),
        guard=UrlGuard.from_allowlist(""),
        options=options or CaptureOptions(allow_local=True),
        segmenter=None,
        host=host,
        store=CaptureStore(broker, SID),
        settings=settings or SwapSettings(),
        drain=drain,
    )


async def owned(capture: SessionCapture, *, announced: bool = True) -> SessionCapture:
    """Make ``capture`` the session's owner in the broker (as its job does before it runs)."""
    await capture.store.load()
    capture.store.state.owner = capture.host.job_id
    capture.store.state.announced = announced
    await capture.store.save()
    return capture


def segment(seq: int, start_s: float, end_s: float, epoch: int = 0) -> AudioSegment:
    """A segment of silence from ``start_s`` to ``end_s`` (session clock)."""
    samples = np.zeros(round((end_s - start_s) * SAMPLE_RATE_HZ), dtype=np.float32)
    return AudioSegment(Segment(SID, seq, start_s, end_s, start_s, end_s, epoch), samples)
