"""Collecting what a distributed session produced: transcript, swap events, each segment's audio.
Used by the e2e tests and benchmarks/bench_hotpotato.py."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field

import numpy as np
import psutil

from couchpotato.records import EndEvent, Event, GapEvent, Segment, SessionEvent, TranscriptEvent, Word
from hotpotato.records import SwapEvent
from katopotato.api.swaps import swap_events
from katopotato.blobs import BlobStore
from katopotato.scheduler import Scheduler
from katopotato.transcription import ASR_KIND, transcript_events

SR = 16_000


@dataclass
class Run:
    """A finished session: its events, its swap events and its committed segments' audio."""

    sid: str
    events: list[Event]
    swaps: list[SwapEvent]
    segments: list[tuple[Segment, np.ndarray]] = field(default_factory=list)

    @property
    def end(self) -> EndEvent:
        assert isinstance(self.events[-1], EndEvent), self.events[-1]
        return self.events[-1]

    @property
    def commits(self) -> list[TranscriptEvent | GapEvent]:
        return [e for e in self.events if isinstance(e, TranscriptEvent | GapEvent)]

    @property
    def words(self) -> list[Word]:
        return [w for e in self.events if isinstance(e, TranscriptEvent) for w in e.words]

    @property
    def text(self) -> str:
        return " ".join(e.text for e in self.events if isinstance(e, TranscriptEvent))

    def of(self, kind: str) -> list[SwapEvent]:
        return [s for s in self.swaps if s.type == kind]

    def check_complete(self) -> None:
        """Session first, end last, every seq once in order, no gaps, ended with the source."""
        assert isinstance(self.events[0], SessionEvent), self.events[0]
        assert self.end.reason == "end_of_source" and not self.end.error, self.end
        assert [e.seq for e in self.commits] == list(range(self.end.segments)), "each seq once, in order"
        assert not [e for e in self.commits if isinstance(e, GapEvent)], "no segment was lost"
        assert len([e for e in self.events if isinstance(e, SessionEvent)]) == 1


async def collect(sched: Scheduler, blobs: BlobStore | None, sid: str, timeout_s: float = 240) -> Run:
    """Wait for the session's end; then its swap events and (with ``blobs``) its segments' audio."""
    async with asyncio.timeout(timeout_s):
        events = [ev async for _id, ev in transcript_events(sched.broker, sid)]
    swaps = [e for _id, e in await swap_events(sched.broker, sid)]
    run = Run(sid, events, swaps)
    if blobs is not None:
        seen: dict[int, Segment] = {}
        for job in await sched.list(kind=ASR_KIND, limit=2000):
            if job.params.get("session_id") == sid:
                seg = Segment.from_dict(job.params["segment"])
                seen[seg.seq] = seg
        for seq in sorted(seen):
            seg = seen[seq]
            data = await blobs.get(seg.audio)
            run.segments.append((seg, np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0))
    return run


def capture_ffmpeg(url_part: str) -> psutil.Process | None:
    """This process's FFmpeg decoding a direct source whose URL contains ``url_part``."""
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        decoding = cmd and os.path.basename(cmd[0]) == "ffmpeg" and "pipe:1" in cmd and "-hls_time" not in cmd
        if decoding and any(url_part in a for a in cmd):
            return p
    return None


def chromium_of(pid_root: int, url_part: str) -> psutil.Process | None:
    """The Chromium browser process (not a child process type) showing a URL containing ``url_part``."""
    for p in psutil.Process(pid_root).children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        browser = cmd and "chromium" in os.path.basename(cmd[0]) and not any(a.startswith("--type=") for a in cmd)
        if browser and any(url_part in a for a in cmd):
            return p
    return None


def kill9(p: psutil.Process) -> None:
    os.kill(p.pid, signal.SIGKILL)
