"""Alignment of a new instance's audio: cross-correlation on synthetic and real speech with known
offsets (integer and fractional, with noise and a level change), refusal when it is not confident,
and timestamps checked against the audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from couchpotato.testing import synthesize
from hotpotato.align import (
    AlignOptions,
    Audio,
    ClockRef,
    align_timestamps,
    align_wallclock,
    align_xcorr,
    ncc_curve,
    wallclock_prior,
)
from hotpotato.errors import AlignmentError

from ..conftest import requires_media_tools

SR = 16_000
RNG = np.random.default_rng(20261127)


def fractional_delay(x: np.ndarray, delay: float) -> np.ndarray:
    """``x`` delayed by ``delay`` samples (any real number), by a phase shift in the frequency domain."""
    n = len(x)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, size)
    freqs = np.fft.rfftfreq(size)
    return np.fft.irfft(spec * np.exp(-2j * np.pi * freqs * delay), size)[:n].astype(np.float32)


def two_instances(
    signal: np.ndarray, session_start: int, true_offset: float, *, noise_db: float | None = None, gain: float = 1.0
) -> tuple[Audio, Audio]:
    """The old instance's reference (session clock) and a new instance's audio whose sample ``l`` is
    session sample ``l + true_offset`` (fractional allowed), with its own noise and level."""
    ref = Audio(session_start, signal[session_start:].astype(np.float32))
    whole = int(np.floor(true_offset))
    frac = true_offset - whole
    shifted = fractional_delay(signal, -frac) if frac else signal
    new = shifted[whole:].astype(np.float32) * gain
    if noise_db is not None:
        rms = float(np.sqrt(np.mean(new**2)))
        new = new + RNG.normal(0, rms * 10 ** (noise_db / 20), len(new)).astype(np.float32)
    return ref, Audio(0, new)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """30 s of real (synthesised) speech with pauses, as 16 kHz samples."""
    if requires_media_tools.args[0]:
        pytest.skip(requires_media_tools.kwargs["reason"])
    import wave

    text = (
        "The council met for more than four hours on Tuesday. Members argued about the libraries. "
        "The library plan would keep every branch open on Sunday afternoons. Supporters said that "
        "families who work during the week have no other time to borrow books. Opponents said the cost "
        "was too high, and that the money would be better spent on roads and street lights."
    )
    path = synthesize(text, tmp_path_factory.mktemp("speech") / "speech.wav")
    with wave.open(str(Path(path)), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    assert len(data) > 20 * SR
    return data


def pink_noise(seconds: float) -> np.ndarray:
    white = RNG.normal(0, 1, int(seconds * SR))
    spec = np.fft.rfft(white)
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    x = np.fft.irfft(spec, len(white))
    return (0.2 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.mark.parametrize("true_offset", [0, 1, 12_345, 48_000, 80_001])
@pytest.mark.parametrize("prior_error_s", [-2.5, 0.0, 0.7, 3.4])
def test_integer_offsets_in_noise_are_found_exactly(true_offset: int, prior_error_s: float) -> None:
    signal = pink_noise(30)
    ref, new = two_instances(signal, 16_000, true_offset)
    prior = true_offset + round(prior_error_s * SR)
    a = align_xcorr(ref, Audio(new.start, new.samples[: 12 * SR]), prior)
    assert a.method == "xcorr" and a.offset == true_offset
    assert a.confidence > 0.99 and a.error_ms < 1.0


@pytest.mark.parametrize("true_offset", [3_000.0, 3_000.25, 41_017.5, 41_017.8])
def test_real_speech_with_fractional_offsets_noise_and_level(speech: np.ndarray, true_offset: float) -> None:
    """Different capture paths resample with a different phase and add their own noise: the error
    stays within a sample (far under the 20 ms goal) and the confidence high."""
    ref, new = two_instances(speech, 2 * SR, true_offset, noise_db=-25, gain=0.5)
    a = align_xcorr(ref, Audio(0, new.samples[: 14 * SR]), round(true_offset) + 9_000)
    error_ms = abs(a.offset - true_offset) / SR * 1000
    assert error_ms <= 1000 / SR, f"{error_ms:.3f} ms"
    assert a.confidence > 0.9
    assert a.probes.startswith(("2/", "3/"))


def test_speech_alignment_error_is_tiny_across_many_offsets(speech: np.ndarray) -> None:
    errors = []
    for true_offset in RNG.uniform(SR, 8 * SR, 12):
        ref, new = two_instances(speech, SR, float(true_offset), noise_db=-20)
        prior = round(true_offset + RNG.uniform(-3, 3) * SR)
        a = align_xcorr(ref, Audio(0, new.samples[: 12 * SR]), prior)
        errors.append(abs(a.offset - true_offset) / SR * 1000)
    assert max(errors) <= 0.1, errors  # ms: within two samples at most


def test_a_silent_overlap_is_refused_not_guessed() -> None:
    silence = np.zeros(20 * SR, dtype=np.float32)
    ref, new = two_instances(silence, 0, 5_000)
    with pytest.raises(AlignmentError, match="not enough audible overlap"):
        align_xcorr(ref, new, 5_000)


def test_a_periodic_signal_is_ambiguous_and_refused() -> None:
    t = np.arange(25 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    ref, new = two_instances(tone, 0, 7_000)
    with pytest.raises(AlignmentError, match="not confident"):
        align_xcorr(ref, new, 7_000)


def test_unrelated_audio_is_refused(speech: np.ndarray) -> None:
    """A new instance that hears something else (a per-viewer advert, another stream)."""
    ref = Audio(0, speech)
    other = Audio(0, pink_noise(20))
    with pytest.raises(AlignmentError):
        align_xcorr(ref, other, 3 * SR)


def test_an_offset_outside_the_search_range_is_refused(speech: np.ndarray) -> None:
    ref, new = two_instances(speech, 0, 10 * SR)
    with pytest.raises(AlignmentError):
        align_xcorr(ref, Audio(0, new.samples[: 10 * SR]), 2 * SR, AlignOptions(search_s=3.0))


def test_timestamps_checked_by_the_audio(speech: np.ndarray) -> None:
    ref, new = two_instances(speech, 0, 30_000.0, noise_db=-30)
    # right timestamps: kept, with the audio's confirmation
    ok = align_timestamps(30_000, ref, Audio(0, new.samples[: 10 * SR]))
    assert ok.method == "timestamps" and ok.offset == 30_000 and ok.residual_ms == 0.0 and ok.confidence > 0.9
    # timestamps 0.5 s off (a stream whose clock restarted): the audio wins, and says so
    off = align_timestamps(30_000 + SR // 2, ref, Audio(0, new.samples[: 10 * SR]))
    assert off.method == "xcorr" and off.offset == 30_000 and "disagreed" in off.note
    assert off.residual_ms == pytest.approx(500.0)
    # nothing to check against: taken as given, and said so
    alone = align_timestamps(30_000, None, new)
    assert alone.method == "timestamps" and "not checked" in alone.note
    silent = align_timestamps(30_000, Audio(0, np.zeros(20 * SR, np.float32)), Audio(0, np.zeros(10 * SR, np.float32)))
    assert silent.method == "timestamps" and "silent" in silent.note


def test_timestamps_contradicted_by_unrelated_audio_are_refused(speech: np.ndarray) -> None:
    with pytest.raises(AlignmentError, match="timestamps not confirmed"):
        align_timestamps(10_000, Audio(0, speech), Audio(0, pink_noise(12)))


def test_the_new_instances_first_second_is_not_used(speech: np.ndarray) -> None:
    """A player starting up gives a first second unlike the old instance's: it must not spoil the match."""
    ref, new = two_instances(speech, 0, 20_000.0)
    garbled = new.samples.copy()
    garbled[:SR] = RNG.normal(0, 0.3, SR)
    a = align_xcorr(ref, Audio(0, garbled[: 10 * SR]), 20_000)
    assert a.offset == 20_000 and a.confidence > 0.99


def test_ncc_is_one_for_the_same_audio_and_zero_where_the_reference_is_silent() -> None:
    x = pink_noise(2)
    ref = np.concatenate([np.zeros(SR, np.float32), x, np.zeros(SR, np.float32)])
    curve = ncc_curve(ref, x[:8000])
    assert int(np.argmax(curve)) == SR and curve[SR] == pytest.approx(1.0)
    assert np.all(curve[: SR // 2] == 0)


def test_wallclock_prior_and_clock_refs() -> None:
    t0 = 1_800_000_000.0
    old = [(48_000 + i * 1600, t0 + 3.0 + i * 0.1) for i in range(50)]  # session clock
    new = [(1600 * (i + 1), t0 + 4.0 + i * 0.1 + (0.3 if i == 7 else 0.0)) for i in range(50)]  # one late chunk
    prior = wallclock_prior(old, new)
    # new local sample l arrives 1 s after the old instance's l + 46400
    assert abs(prior - (48_000 - 1600 + 16_000)) <= 1
    ref = ClockRef(sample=160_000, pts=100.0)
    assert ref.session_sample(101.5) == 184_000
    assert ClockRef.from_dict(ref.to_dict()) == ref
    wall = align_wallclock(1234, 500.0)
    assert wall.method == "wallclock" and wall.confidence == 0.0 and wall.error_ms == 500.0
