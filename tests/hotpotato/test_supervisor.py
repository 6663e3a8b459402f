"""Supervisor decisions: a quiet source is never acted on; a broken capture is, within the detection time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from hotpotato.supervisor import HealthProbe, Supervisor, SupervisorOptions, Verdict

T0 = 1_700_000_000.0
TICK = 0.25
DETECTION_GOAL_S = 5.0


@dataclass
class Source:
    """A simulated capture instance, probed every TICK seconds of wall time."""

    live: bool = True
    burst_s: float = 0.1  # audio arrives in bursts this far apart (HLS: a segment's length)
    level_dbfs: float = -20.0
    alive: dict[str, bool] = field(default_factory=lambda: {"ffmpeg": True})
    errors: int = 0
    last_error: str = ""
    flowing: bool = True
    speed: float = 1.0  # media seconds per wall second
    now: float = T0
    audio_at: float | None = None
    media_s: float = 0.0
    bytes_total: int = 0
    silent_s: float = 0.0
    _next_burst: float = T0
    _last_burst: float = T0

    def advance(self) -> HealthProbe:
        self.now += TICK
        if not self.flowing:
            self._last_burst = self.now  # what was not delivered is lost, not owed
        elif self.now >= self._next_burst:
            self.audio_at = self.now
            got = (self.now - self._last_burst) * self.speed
            self.media_s += got
            self.bytes_total += int(got * 32000)
            self._last_burst = self.now
            self._next_burst = self.now + self.burst_s
        self.silent_s = self.silent_s + TICK if self.level_dbfs < -60 else 0.0
        return HealthProbe(
            at=self.now,
            started_at=T0,
            audio_at=self.audio_at,
            media_s=self.media_s,
            bytes_total=self.bytes_total,
            rms_dbfs=self.level_dbfs if self.audio_at else None,
            silent_s=self.silent_s,
            alive=dict(self.alive),
            errors_total=self.errors,
            last_error=self.last_error,
            live=self.live,
        )


def run(
    sup: Supervisor, src: Source, seconds: float, change: Callable[[Source], None] | None = None
) -> Iterator[Verdict]:
    if change is not None:
        change(src)
    for _ in range(round(seconds / TICK)):
        yield sup.observe(src.advance())


def first_broken(sup: Supervisor, src: Source, seconds: float) -> float | None:
    """Seconds until the first broken verdict (from now), or None."""
    start = src.now
    for v in run(sup, src, seconds):
        if v.broken:
            return src.now - start
    return None


def test_a_healthy_stream_is_ok_and_never_broken() -> None:
    sup, src = Supervisor(), Source()
    verdicts = list(run(sup, src, 120))
    assert verdicts[-1].state == "ok"
    assert not [v for v in verdicts if v.broken]


def test_a_source_that_goes_quiet_is_silent_not_broken() -> None:
    """Digital silence for minutes, bytes flowing, processes alive: the source is quiet, not the capture."""
    sup, src = Supervisor(), Source(alive={"chromium": True, "ffmpeg": True, "xvfb": True, "tab": True})
    list(run(sup, src, 10))
    verdicts = list(run(sup, src, 300, lambda s: setattr(s, "level_dbfs", -120.0)))
    assert not [v for v in verdicts if v.broken]
    assert verdicts[-1].state == "silent" and "source is quiet" in verdicts[-1].reason
    # …and sound again is ok again
    assert list(run(sup, src, 3, lambda s: setattr(s, "level_dbfs", -18.0)))[-1].state == "ok"


@pytest.mark.parametrize("name", ["ffmpeg", "chromium", "tab", "xvfb"])
def test_a_dead_process_is_broken_within_the_confirmation_time(name: str) -> None:
    sup = Supervisor()
    src = Source(alive={"chromium": True, "ffmpeg": True, "xvfb": True, "tab": True})
    list(run(sup, src, 10))
    src.alive[name] = False
    src.level_dbfs = -120.0  # a crashed tab: digital silence while bytes still flow
    took = first_broken(sup, src, 10)
    assert took is not None and took <= sup.options.dead_confirm_s + TICK
    assert sup.verdict is not None
    assert ("renderer" if name == "tab" else name) in sup.verdict.reason
    assert sup.verdict.evidence_at is not None and sup.verdict.evidence_at <= sup.verdict.since


def test_a_process_dead_for_one_probe_is_not_yet_broken() -> None:
    sup, src = Supervisor(), Source()
    list(run(sup, src, 5))
    src.alive["ffmpeg"] = False
    assert not sup.observe(src.advance()).broken  # 0.25 s < dead_confirm_s
    src.alive["ffmpeg"] = True
    assert not [v for v in run(sup, src, 5) if v.broken]


def test_bytes_that_stop_are_broken_after_the_detection_time_not_before() -> None:
    sup, src = Supervisor(SupervisorOptions(detection_s=3.0)), Source()
    list(run(sup, src, 20))
    src.flowing = False
    took = first_broken(sup, src, 20)
    assert took is not None and 3.0 <= took <= 3.0 + 2 * TICK <= DETECTION_GOAL_S
    assert sup.verdict is not None and "no audio for" in sup.verdict.reason


def test_a_bursty_source_is_judged_against_its_own_rhythm() -> None:
    """HLS with 4 s segments delivers in bursts 4 s apart: that is its normal rhythm, not a stall."""
    sup, src = Supervisor(SupervisorOptions(detection_s=3.0)), Source(burst_s=4.0)
    assert not [v for v in run(sup, src, 120) if v.broken]
    assert sup.stall_limit_s() == pytest.approx(1.5 * 4.0, abs=TICK)
    src.flowing = False
    took = first_broken(sup, src, 30)
    assert took is not None and took <= 1.5 * 4.0 + 4.0 + TICK  # at most one burst gap, then the limit


def test_error_lines_with_no_audio_are_broken_sooner_and_with_audio_only_degraded() -> None:
    sup, src = Supervisor(SupervisorOptions(detection_s=3.0, error_stall_s=1.5)), Source()
    list(run(sup, src, 10))
    verdicts = list(run(sup, src, 2, lambda s: (setattr(s, "errors", 1), setattr(s, "last_error", "HTTP 500"))))
    assert verdicts[-1].state == "degraded" and "HTTP 500" in verdicts[-1].reason
    list(run(sup, src, 5))
    src.errors, src.flowing = 2, False
    took = first_broken(sup, src, 10)
    assert took is not None and took <= 1.5 + 2 * TICK
    assert sup.verdict is not None and "after an error" in sup.verdict.reason


def test_no_audio_after_the_start_is_broken_after_the_startup_time() -> None:
    sup, src = Supervisor(SupervisorOptions(startup_s=8.0)), Source(flowing=False)
    verdicts = list(run(sup, src, 7.5))
    assert {v.state for v in verdicts} == {"starting"}
    took = first_broken(sup, src, 5)
    assert took is not None and sup.verdict is not None and "after the capture started" in sup.verdict.reason


def test_a_live_source_far_slower_than_real_time_is_broken_a_recorded_one_is_not() -> None:
    for live, expect in ((True, True), (False, False)):
        sup, src = Supervisor(SupervisorOptions(rate_window_s=10.0)), Source(live=live)
        list(run(sup, src, 15))
        src.speed = 0.3
        verdicts = list(run(sup, src, 25))
        assert any(v.broken for v in verdicts) is expect
        if expect:
            assert "real time" in next(v for v in verdicts if v.broken).reason


def test_probe_and_verdict_round_trip() -> None:
    src = Source()
    probe = src.advance()
    assert HealthProbe.from_dict(probe.to_dict()) == probe
    v = Verdict("broken", "ffmpeg exited", T0, T0 - 1.0)
    assert Verdict.from_dict(v.to_dict()) == v
    with pytest.raises(ValueError):
        Verdict.from_dict({"state": "fine", "since": 1})


def test_a_capture_that_says_it_is_broken_is_broken_though_all_lives_and_flows() -> None:
    # A page whose renderer never renders, or whose media plays into a silent sink: digital silence
    # flows and every process lives, so only the capture's own fault tells it from a quiet page.
    sup = Supervisor()
    quiet = HealthProbe(at=T0 + 16, started_at=T0, audio_at=T0 + 15.9, media_s=15.5, bytes_total=496_000,
                        rms_dbfs=-120.0, silent_s=15.5, alive={"chromium": True, "ffmpeg": True})  # fmt: skip
    assert sup.observe(quiet).state == "silent"
    reason = "the page has rendered no frame 15 s after Chromium started (DevTools: Runtime.evaluate: no answer)"
    probe = HealthProbe.from_dict({**quiet.to_dict(), "at": T0 + 16.25, "fault": reason})
    verdict = sup.observe(probe)
    assert verdict.state == "broken" and verdict.reason == reason and verdict.evidence_at == T0
    assert HealthProbe.from_dict(probe.to_dict()) == probe
