"""The pure parts of browser capture: health arithmetic, yt-dlp's answer, Chromium's command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from couchpotato.browser.chromium import chromium_argv, chromium_env
from couchpotato.browser.errors import NoAudio, SilenceTimeout
from couchpotato.browser.process import TAG_ENV
from couchpotato.decoder import PcmChunk
from couchpotato.health import FLOOR_DBFS, HealthMonitor, HealthSample
from couchpotato.resolve import Unresolved, _pick

SR = 16_000


def tone(seconds: float, amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def chunks(samples: np.ndarray, start: int = 0, size: int = 1600) -> list[PcmChunk]:
    return [PcmChunk(start + i, samples[i : i + size]) for i in range(0, len(samples), size)]


def test_one_sample_per_second_with_its_level() -> None:
    monitor = HealthMonitor("page", processes={"chromium": lambda: True})
    audio = np.concatenate([tone(2.0), np.zeros(SR, dtype=np.float32)])
    samples = [s for c in chunks(audio, size=1234) for s in monitor.observe(c)]
    assert [s.media_s for s in samples] == [1.0, 2.0, 3.0]
    # a 0.1 sine is 0.0707 RMS: -23 dBFS
    assert [round(s.rms_dbfs) for s in samples] == [-23, -23, FLOOR_DBFS]
    assert [s.status for s in samples] == ["ok", "ok", "silent"]
    assert samples[-1].bytes_total == 2 * len(audio) and samples[-1].silent_s == 1.0
    assert samples[0].alive == {"chromium": True}


def test_no_audio_after_the_timeout_and_not_before() -> None:
    monitor = HealthMonitor("page", note="an HTML page rendered in Chromium", no_audio_timeout_s=3)
    for c in chunks(np.zeros(int(2.9 * SR), dtype=np.float32)):
        monitor.observe(c)
    assert monitor.verdict() is None
    for c in chunks(np.zeros(SR, dtype=np.float32), start=int(2.9 * SR)):
        monitor.observe(c)
    error = monitor.verdict()
    assert isinstance(error, NoAudio)
    assert str(error).startswith("no_audio: page, an HTML page rendered in Chromium, played no sound for 3 s")
    assert monitor.latest is not None and monitor.latest.status == "no_audio"


def test_after_sound_silence_is_a_health_state_not_an_end() -> None:
    monitor = HealthMonitor("page", no_audio_timeout_s=2)
    audio = np.concatenate([np.zeros(SR, dtype=np.float32), tone(1.0), np.zeros(40 * SR, dtype=np.float32)])
    samples = [s for c in chunks(audio) for s in monitor.observe(c)]
    assert [s.status for s in samples] == ["silent", "ok"] + ["silent"] * 40
    assert [s.heard_sound for s in samples[:3]] == [False, True, True]
    assert samples[-1].silent_s == 40.0
    assert monitor.verdict() is None, "the no-audio timeout applies only until the first sound"
    wire = samples[-1].to_dict()
    assert wire["status"] == "silent" and wire["silent_s"] == 40.0 and wire["heard_sound"] is True
    assert HealthSample.from_dict(wire).to_dict() == wire


def test_the_silence_timeout_ends_after_sound_only_when_set() -> None:
    monitor = HealthMonitor("page", note="an HTML page rendered in Chromium", no_audio_timeout_s=2,
                            silence_timeout_s=5)  # fmt: skip
    for c in chunks(np.concatenate([tone(1.0), np.zeros(int(4.9 * SR), dtype=np.float32)])):
        monitor.observe(c)
    assert monitor.verdict() is None
    for c in chunks(np.zeros(SR, dtype=np.float32), start=int(5.9 * SR)):
        monitor.observe(c)
    error = monitor.verdict()
    assert isinstance(error, SilenceTimeout) and error.code == "silence_timeout"
    assert str(error).startswith(
        "silence_timeout: page, an HTML page rendered in Chromium, has been silent for 5 s after sound"
    )


def test_a_capture_continuing_a_session_with_sound_is_not_judged_no_audio() -> None:
    monitor = HealthMonitor("page", no_audio_timeout_s=2, heard_sound=True)
    statuses = [s.status for c in chunks(np.zeros(5 * SR, dtype=np.float32)) for s in monitor.observe(c)]
    assert statuses == ["silent"] * 5 and monitor.verdict() is None


def test_a_dead_process_is_reported() -> None:
    alive = {"chromium": True}
    monitor = HealthMonitor("page", processes={"chromium": lambda: alive["chromium"]})
    monitor.observe(PcmChunk(0, tone(1.0)))
    alive["chromium"] = False
    (sample,) = monitor.observe(PcmChunk(SR, tone(1.0)))
    assert sample.status == "dead" and sample.alive == {"chromium": False}


def test_a_clock_jump_closes_the_partial_second() -> None:
    monitor = HealthMonitor("page")
    monitor.observe(PcmChunk(0, tone(0.5)))
    samples = monitor.observe(PcmChunk(10 * SR, tone(1.0)))  # a restarted recorder, 9.5 s later
    assert [s.media_s for s in samples] == [0.5, 11.0]


def test_pick_prefers_an_audio_format_and_the_first_playlist_entry() -> None:
    info = {
        "_type": "playlist",
        "entries": [
            {
                "extractor_key": "Generic",
                "is_live": True,
                "requested_formats": [
                    {"url": "https://v.example/video", "acodec": "none"},
                    {"url": "https://v.example/audio", "acodec": "opus"},
                ],
            },
            {"url": "https://v.example/second"},
        ],
    }
    found = _pick(info)
    assert (found.url, found.extractor, found.is_live) == ("https://v.example/audio", "generic", True)
    with pytest.raises(Unresolved, match="no media URL"):
        _pick({"title": "nothing"})
    with pytest.raises(Unresolved, match="without entries"):
        _pick({"_type": "playlist", "entries": []})


def test_chromium_goes_through_the_proxy_even_for_loopback() -> None:
    argv = chromium_argv("https://example.org/", user_data_dir=Path("/tmp/p"), proxy_url="http://127.0.0.1:8123")
    assert "--proxy-server=http://127.0.0.1:8123" in argv
    assert "--proxy-bypass-list=<-loopback>" in argv
    assert "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1" in argv
    assert "--disable-quic" in argv and "--force-webrtc-ip-handling-policy=disable_non_proxied_udp" in argv
    assert argv[-3:] == ["--kiosk", "--remote-debugging-pipe", "https://example.org/"]
    assert not any(a.startswith("--remote-debugging-port") for a in argv), "DevTools on a pipe only, never a port"


def test_chromium_environment_is_the_sessions_own() -> None:
    base = {"PATH": "/usr/bin", "DISPLAY": ":0", "PULSE_SINK": "desktop", "https_proxy": "http://x", "LANG": "C"}
    env = chromium_env(base, home=Path("/tmp/h"), display=":7", pulse_server="unix:/s", sink="cp-1", tag="t1")
    assert env["DISPLAY"] == ":7" and env["PULSE_SINK"] == "cp-1" and env["PULSE_SERVER"] == "unix:/s"
    assert env["HOME"] == "/tmp/h" and env[TAG_ENV] == "t1" and env["LANG"] == "C"
    assert "https_proxy" not in env


async def test_a_recorder_whose_pump_died_without_a_word_is_an_error_not_a_wait() -> None:
    from couchpotato.browser.errors import RecorderError
    from couchpotato.browser.recorder import MonitorRecorder

    recorder = MonitorRecorder("nowhere.monitor", server="unix:/nonexistent", env={}, stall_timeout_s=1.0)

    async def pump() -> None:
        raise RuntimeError("libpulse went away")

    recorder._pump = asyncio.ensure_future(pump())
    with pytest.raises(RecorderError, match="RuntimeError: libpulse went away"):
        await asyncio.wait_for(anext(aiter(recorder.chunks())), 5)
