"""Media timestamps from real FFmpeg: a file read from a position, and two decoders of one live HLS
stream started at different moments, placed on one clock by the PTS of their first samples."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from couchpotato.decoder import PcmDecoder
from couchpotato.errors import SourceError
from couchpotato.source import MediaSource
from couchpotato.testing import Programme
from hotpotato.align import Audio, ClockRef, align_timestamps, ncc_curve

from ..conftest import requires_media_tools
from .conftest import SR, LiveHls, read_wav

pytestmark = [requires_media_tools, pytest.mark.timeout(120)]


def local(path: Path) -> MediaSource:
    return MediaSource(str(path), str(path), "file", live=False, network=False, reason="local file")


async def decode(decoder: PcmDecoder, seconds: float | None = None) -> Audio:
    chunks = []
    async with contextlib.aclosing(decoder.__aiter__()) as pcm:  # stops FFmpeg when we stop early
        async for chunk in pcm:
            chunks.append(chunk)
            if seconds is not None and chunk.end_sample - chunks[0].start_sample >= seconds * SR:
                break
    return Audio(chunks[0].start_sample, np.concatenate([c.samples for c in chunks]))


@pytest.mark.parametrize("start_s", [0.0, 7.3456, 21.0])
async def test_a_file_is_read_from_a_position_sample_accurately(programme: Programme, start_s: float) -> None:
    original = read_wav(programme.path)
    d = PcmDecoder(local(programme.path), start_s=start_s, timestamps=True, duration_s=4.0)
    got = await decode(d)
    first = round(start_s * SR)
    assert got.start == first and len(got.samples) == 4 * SR
    assert d.clock is not None and d.clock[0] == first and d.clock[1] == pytest.approx(start_s, abs=1 / SR)
    assert np.max(np.abs(got.samples - original[first : first + 4 * SR])) < 2 / 32768
    assert d.errors_total == 0


async def test_two_decoders_of_a_live_hls_stream_share_its_clock(
    programme: Programme, live_hls: Callable[[Programme], LiveHls]
) -> None:
    stream = live_hls(programme)
    source = MediaSource(stream.url, stream.url, "hls", live=True, network=True, reason="HLS playlist, live")
    first = PcmDecoder(source, timestamps=True)
    a_task = asyncio.ensure_future(decode(first, 14))
    await asyncio.sleep(4.0)  # the second one joins the stream later, at another segment
    second = PcmDecoder(source, timestamps=True)
    b = await decode(second, 8)
    a = await a_task
    assert first.clock is not None and second.clock is not None
    assert second.clock[1] > first.clock[1] + 1.0, "the second decoder started further into the stream"
    ref = ClockRef(first.clock[0], first.clock[1])  # the first decoder's clock is the "session's"
    offset = ref.session_sample(second.clock[1]) - second.clock[0]
    # The audio confirms the timestamps exactly (cross-correlation within ±60 ms finds 0 residual)
    alignment = align_timestamps(offset, a, b)
    assert alignment.method == "timestamps" and alignment.residual_ms is not None
    assert abs(alignment.residual_ms) <= 1000 / SR and alignment.confidence > 0.9
    # and independently: the second decoder's audio is where the offset says in the first one's
    probe = b.samples[2 * SR : 4 * SR]
    curve = ncc_curve(a.span(offset + 2 * SR - 800, offset + 4 * SR + 800), probe)
    assert int(np.argmax(curve)) == 800 and curve.max() > 0.9


async def test_a_killed_ffmpeg_is_an_error_with_reconnects_off(programme: Programme) -> None:
    d = PcmDecoder(local(programme.path), realtime=True, timestamps=True, reconnect_attempts=0)
    with pytest.raises(SourceError, match=r"FFmpeg was killed \(signal 9\)"):
        async with contextlib.aclosing(d.__aiter__()) as pcm:
            async for chunk in pcm:
                if chunk.end_sample > SR and d.pid:
                    os.kill(d.pid, signal.SIGKILL)
