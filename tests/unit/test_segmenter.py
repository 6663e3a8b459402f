from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couchpotato.decoder import PcmChunk
from couchpotato.errors import ConfigError
from couchpotato.segmenter import AudioSegment, Segmenter, SegmenterOptions
from couchpotato.testing import synthesize
from tests.conftest import requires_media_tools

SR = 16_000


def load_wav(path: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    return np.asarray(decode_audio(str(path)), dtype=np.float32)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Two sentences, a long silence, then a long breathless sentence: every kind of cut."""
    folder = tmp_path_factory.mktemp("seg")
    a = load_wav(synthesize("Good evening. Tonight we look at the budget and the bridge.", folder / "a.wav"))
    b = load_wav(
        synthesize(
            "the council agreed to a smaller version of the plan for the branches that open on sundays "
            "for a trial period of six months and the director said she was pleased with the result",
            folder / "b.wav",
            rate_wpm=230,
        )
    )
    return np.concatenate([a, np.zeros(SR * 3, np.float32), b])


def run(audio: np.ndarray, chunk: int, options: SegmenterOptions | None = None) -> list[AudioSegment]:
    seg = Segmenter("s", options)
    out: list[AudioSegment] = []
    for i in range(0, len(audio), chunk):
        out += seg.push(PcmChunk(i, audio[i : i + chunk]))
    return out + seg.flush()


@requires_media_tools
@pytest.mark.parametrize(
    "opts",
    [
        SegmenterOptions(max_segment_s=6.0, target_segment_s=4.0, min_segment_s=1.5, overlap_ms=1000, context_ms=1000),
        SegmenterOptions.for_latency("low"),
    ],
    ids=["short", "low-latency"],
)
def test_segments_have_gapless_seqs_and_tile_the_timeline(speech: np.ndarray, opts: SegmenterOptions) -> None:
    segs = run(speech, 1600, opts)
    assert [s.segment.seq for s in segs] == list(range(len(segs)))
    lead = max(opts.overlap_ms / 2000, opts.context_ms / 1000) + 0.032  # before the owned span (whole windows)
    tail = opts.overlap_ms / 2000 + 0.032  # and after it, where a cut fell inside speech (whole VAD windows)
    for s in segs:
        seg = s.segment
        assert seg.keep_start < seg.keep_end
        assert seg.keep_start - lead - 1e-9 <= seg.start < seg.end <= seg.keep_end + tail + 1e-9
        assert seg.keep_end - seg.keep_start <= opts.max_segment_s + 0.05
        assert len(s.samples) == round((seg.end - seg.start) * SR)
    for prev, nxt in itertools.pairwise(segs):
        assert prev.segment.keep_end <= nxt.segment.keep_start + 1e-9, "owned spans never overlap"
    forced = [s.segment for s in segs if s.segment.end > s.segment.keep_end + 1e-9]
    assert forced, "the breathless sentence forces a cut inside speech, with audio past the cut"


@requires_media_tools
def test_silence_gets_no_segment_and_is_trimmed(speech: np.ndarray) -> None:
    segs = run(speech, 1600)
    # sentence a (3.7 s), 3 s of silence, sentence b: without a lead-in, b's audio starts at its speech
    trimmed = run(speech, 1600, SegmenterOptions(context_ms=0))
    assert all(s.segment.end - s.segment.start < 7 for s in trimmed), "no segment is mostly silence"
    assert next(s.segment for s in trimmed if s.segment.keep_start >= 4.5).start >= 6.3
    # the lead-in reaches back across the pause (shorter than lead_in_max_pause_ms), not a longer one
    assert next(s.segment for s in segs if s.segment.keep_start >= 4.5).start < 4.0
    broken = run(speech, 1600, SegmenterOptions(lead_in_max_pause_ms=1000))
    assert next(s.segment for s in broken if s.segment.keep_start >= 4.5).start >= 6.3
    silent = Segmenter("s")
    out = []
    for i in range(0, SR * 10, 1600):
        out += silent.push(PcmChunk(i, np.zeros(1600, np.float32)))
    assert out + silent.flush() == []


@requires_media_tools
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk=st.integers(1, 20_000))
def test_cuts_do_not_depend_on_how_audio_arrives(speech: np.ndarray, chunk: int) -> None:
    reference = [(s.segment.start, s.segment.end, s.segment.keep_start, s.segment.keep_end) for s in run(speech, 1600)]
    got = [(s.segment.start, s.segment.end, s.segment.keep_start, s.segment.keep_end) for s in run(speech, chunk)]
    assert got == reference


@requires_media_tools
def test_a_clock_jump_closes_the_open_segment(speech: np.ndarray) -> None:
    seg = Segmenter("s")
    half = SR * 2
    out = seg.push(PcmChunk(0, speech[:half]))
    out += seg.push(PcmChunk(half + SR * 60, speech[half : half + SR * 4]))
    out += seg.flush()
    assert out[0].segment.end <= 2.0 + 1e-9
    assert out[1].segment.start >= 62.0
    assert [s.segment.seq for s in out] == [0, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_segment_s": 0},
        {"min_segment_s": 5, "target_segment_s": 4},
        {"max_segment_s": 40},
        {"overlap_ms": -1},
        {"overlap_ms": 8100},  # half of it would reach back past the start of a 2 s segment
        {"context_ms": 12_000},
        {"draft_context_ms": -1},
        {"min_segment_s": 20, "target_segment_s": 20, "max_segment_s": 20, "context_ms": 10_000},
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SegmenterOptions(**kwargs)


def test_latency_profiles() -> None:
    assert SegmenterOptions.for_latency("balanced") == SegmenterOptions()
    low, efficient = SegmenterOptions.for_latency("low"), SegmenterOptions.for_latency("efficient")
    assert low.max_segment_s < SegmenterOptions().max_segment_s < efficient.max_segment_s
    assert SegmenterOptions().context_ms > efficient.context_ms
    with pytest.raises(ConfigError, match="unknown latency profile 'fast'"):
        SegmenterOptions.for_latency("fast")


@requires_media_tools
def test_a_primed_segmenter_gives_its_first_segment_a_lead_in_it_does_not_own(speech: np.ndarray) -> None:
    """A swapped-in capture starts at the old one's cut: the audio before it is context, not owned."""
    cut = len(speech) - 5 * SR + 123  # inside the breathless sentence, not on a VAD window boundary
    seg = Segmenter("s", first_seq=5)
    want = seg.lead_in_samples()
    seg.prime(PcmChunk(max(0, cut - want), speech[max(0, cut - want) : cut]))
    out: list[AudioSegment] = []
    for i in range(cut, len(speech), 1600):
        out += seg.push(PcmChunk(i, speech[i : min(i + 1600, len(speech))]))
    out += seg.flush()
    first = out[0].segment
    assert first.seq == 5 and first.keep_start == pytest.approx(cut / SR)
    # a lead-in: the speech before the cut, up to the context (it starts after the pause before it)
    assert 1.0 <= first.keep_start - first.start <= seg.options.context_ms / 1000 + 0.25
    assert len(out[0].samples) == round((first.end - first.start) * SR)
    np.testing.assert_array_equal(out[0].samples[:100], speech[round(first.start * SR) :][:100])
    with pytest.raises(RuntimeError):
        seg.prime(PcmChunk(0, speech[:SR]))


@requires_media_tools
def test_the_open_segment_is_drafted_with_a_short_lead_in_under_the_seq_it_will_get(speech: np.ndarray) -> None:
    """An interim decode hears the open segment so far and ``draft_context_ms`` of what precedes it
    (the end of the segment cut just before), not the final decode's long lead-in."""
    seg = Segmenter("s")
    cut: list[AudioSegment] = []
    drafts: list[AudioSegment] = []
    for i in range(0, len(speech), 1600):
        cut += seg.push(PcmChunk(i, speech[i : i + 1600]))
        if cut and (d := seg.open_audio()) is not None and d.segment.seq == cut[-1].segment.seq + 1:
            drafts.append(d)
    assert drafts, "the open segment after a cut was never in speech"
    for d in drafts:
        before = next(c for c in cut if c.segment.seq == d.segment.seq - 1).segment
        assert d.segment.keep_start >= before.keep_end - 1e-6, "it owns what follows the cut (a pause trimmed)"
        lead = d.segment.keep_start - d.segment.start
        assert lead <= seg.options.draft_context_ms / 1000 + seg.options.speech_pad_ms / 1000 + 0.05
        assert d.segment.end == pytest.approx(d.segment.keep_end) and len(d.samples) == round(
            (d.segment.end - d.segment.start) * SR
        )
    # with speech right before the cut, the draft's lead-in reaches into it
    assert max(d.segment.keep_start - d.segment.start for d in drafts) >= 1.0
