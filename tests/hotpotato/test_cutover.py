"""Cut-over point choice, the gate that holds the old instance's segments, and HLS backfill math."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from couchpotato.decoder import PcmChunk
from couchpotato.records import Segment
from couchpotato.segmenter import AudioSegment, Segmenter
from hotpotato.backfill import backfill_seconds, parse_live_window
from hotpotato.cutover import CutoverPlanner, Gate, QuietTracker, clean_cut

SR = 16_000


@dataclass(frozen=True)
class Seg:
    segment: Segment


def seg(seq: int, start: float, end: float, keep_start: float, keep_end: float) -> Seg:
    return Seg(Segment("s", seq, start, end, keep_start, keep_end))


def quiet_tracker(levels: list[float], seconds_each: float = 0.5) -> QuietTracker:
    q = QuietTracker()
    pos = 0
    rng = np.random.default_rng(1)
    for level in levels:
        n = int(seconds_each * SR)
        amp = 10 ** (level / 20) * np.sqrt(2)
        q.push(pos, (amp * np.sin(np.arange(n) * 0.3) + rng.normal(0, 1e-6, n)).astype(np.float32))
        pos += n
    return q


def test_quiet_tracker_tells_a_pause_from_speech_and_follows_the_noise_floor() -> None:
    assert quiet_tracker([-20, -20, -20, -90]).quiet()
    assert not quiet_tracker([-20, -90, -90, -20]).quiet()
    # a noisy room: the floor is -40 dBFS, a pause there is still a pause, speech is not
    assert quiet_tracker([-40, -15, -15, -40, -15, -40, -40]).quiet()
    assert not quiet_tracker([-40, -15, -15, -40, -40, -15]).quiet()


def test_planner_prefers_a_clean_segmenter_cut_after_the_new_instances_first_sample() -> None:
    p = CutoverPlanner(from_sample=10 * SR, started_at=0.0, guard=SR // 4)
    loud = quiet_tracker([-20, -20])
    # before the new instance's audio: no; a forced cut (audio past its owned end): no
    assert p.choose([seg(3, 6.0, 9.8, 6.0, 9.8)], 10 * SR, loud, 0.5) is None
    assert p.choose([seg(4, 9.8, 12.9, 9.8, 12.0)], 13 * SR, loud, 1.0) is None
    choice = p.choose([seg(5, 12.0, 13.6, 12.0, 14.1), seg(6, 14.1, 15.0, 14.1, 15.0)], 15 * SR, loud, 1.5)
    assert choice is not None and choice.kind == "segmenter" and choice.sample == round(14.1 * SR)
    assert choice.emit_first == 1  # seg 5 is emitted by the old instance, seg 6 is held


def test_planner_falls_back_to_a_quiet_point_when_no_segment_comes() -> None:
    p = CutoverPlanner(from_sample=0, started_at=100.0, prefer_segmenter_cut_s=4.0)
    quiet = quiet_tracker([-20, -90, -90])
    assert p.choose([], 5 * SR, quiet, 102.0) is None  # a segmenter cut is preferred for a while
    choice = p.choose([], 5 * SR, quiet, 104.5)
    assert choice is not None and choice.kind == "quiet" and choice.sample == 5 * SR
    assert p.choose([], 5 * SR, quiet_tracker([-90, -20]), 104.5) is None  # not in speech
    assert not p.timed_out(110.0) and p.timed_out(120.0)


def test_gate_holds_after_the_cut_and_releases_in_order_or_drops() -> None:
    gate: Gate[Seg] = Gate()
    assert gate.offer(seg(0, 0, 1, 0, 1))
    gate.close(SR)
    held = [seg(i, i, i + 1, i, i + 1) for i in (1, 2, 3)]
    assert not any(gate.offer(s) for s in held)
    assert gate.release() == held and not gate.closed and gate.offer(seg(4, 4, 5, 4, 5))
    gate.close(5 * SR)
    gate.offer(seg(5, 5, 6, 5, 6))
    assert gate.drop() == 1 and gate.held == []


def test_real_segmenter_cuts_in_pauses_are_clean(tmp_path: object) -> None:
    """The segmenter's own cuts in pauses are what the planner takes: their audio ends at keep_end."""
    rng = np.random.default_rng(3)
    parts = []
    for _ in range(4):  # 2.5 s of 'speech-like' noise bursts, 0.6 s pauses
        t = np.arange(int(2.5 * SR)) / SR
        voiced = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
        parts += [voiced + rng.normal(0, 0.01, len(t)).astype(np.float32), np.zeros(int(0.6 * SR), np.float32)]
    audio = np.concatenate(parts)
    s = Segmenter("s", {"min_segment_s": 2.0, "target_segment_s": 2.5, "context_ms": 1000})
    out: list[AudioSegment] = []
    for i in range(0, len(audio), 1600):
        out += s.push(PcmChunk(i, audio[i : i + 1600]))
    if not out:
        pytest.skip("the VAD heard no speech in the synthetic signal")
    assert all(clean_cut(a.segment) for a in out)


def test_live_window_backfill_index() -> None:
    playlist = "\n".join(
        ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:40"]
        + [line for i in range(6) for line in ("#EXTINF:2.000,", f"seg{40 + i}.ts")]
    )
    w = parse_live_window(playlist)
    assert w is not None and w.length_s == 12.0 and w.target_s == 2.0
    assert w.start_index(0.5) == -1 and w.start_index(2.0) == -1 and w.start_index(5.0) == -3
    assert w.start_index(30.0) == 0 and not w.covers(30.0) and w.covers(12.0)
    assert parse_live_window("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n") is None  # a master
    assert parse_live_window("<html>") is None
    assert backfill_seconds(100.0, 95.5, 4.0) == pytest.approx(8.5)
