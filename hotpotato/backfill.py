"""Backfill of a live HLS source: where in its live window to start so the missed audio is read.

A live HLS playlist lists the last few segments (its *live window*). A new capture instance that
must resume from a media time already past (its predecessor died) starts FFmpeg that many seconds
back in the window (``-live_start_index``, negative: counted from the end), reads the backlog as
fast as the network allows, and the session continues with nothing lost, as long as the window
still holds the missing part. Pure: parses a playlist's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXTINF = re.compile(r"^#EXTINF:\s*([0-9.]+)")
_TARGET = re.compile(r"^#EXT-X-TARGETDURATION:\s*([0-9.]+)")


@dataclass(frozen=True, slots=True)
class LiveWindow:
    """The segments of a live media playlist: their durations, oldest first."""

    durations: tuple[float, ...]
    target_s: float

    @property
    def length_s(self) -> float:
        return sum(self.durations)

    def start_index(self, backfill_s: float) -> int:
        """FFmpeg's ``-live_start_index`` that starts at least ``backfill_s`` before the live edge
        (the window's start when it holds less)."""
        if not self.durations:
            return -3
        total = 0.0
        for k, d in enumerate(reversed(self.durations), start=1):
            total += d
            if total >= backfill_s:
                return -k
        return 0  # the oldest segment: as far back as the window goes

    def covers(self, backfill_s: float) -> bool:
        return self.length_s >= backfill_s


def parse_live_window(playlist: str) -> LiveWindow | None:
    """The live window of a media playlist; None for a master playlist or something else."""
    text = playlist.lstrip("\ufeff")
    if not text.lstrip().startswith("#EXTM3U") or "#EXT-X-STREAM-INF" in text:
        return None
    durations: list[float] = []
    target = 0.0
    for line in text.splitlines():
        line = line.strip()
        if m := _EXTINF.match(line):
            durations.append(float(m.group(1)))
        elif m := _TARGET.match(line):
            target = float(m.group(1))
    if not durations:
        return None
    return LiveWindow(tuple(durations), target or max(durations))


def backfill_seconds(now: float, resume_wall: float, margin_s: float) -> float:
    """How far back from the live edge the resumed audio lies: the audio at the resume point
    arrived at ``resume_wall``; start ``margin_s`` earlier still (segments are whole)."""
    return max(0.0, now - resume_wall) + margin_s


__all__ = ["LiveWindow", "backfill_seconds", "parse_live_window"]
