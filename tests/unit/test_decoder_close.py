"""Closing a decoder whose reader stopped early: FFmpeg has filled the pipe nobody reads, and the
close must still stop it at once (asyncio's ``Process.wait`` ends only when every pipe has)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from couchpotato.decoder import PcmDecoder
from couchpotato.source import MediaSource
from couchpotato.testing import synthesize

from ..conftest import requires_media_tools

pytestmark = [requires_media_tools, pytest.mark.timeout(60)]


async def test_a_decoder_closed_with_a_full_pipe_stops_ffmpeg_at_once(tmp_path: Path) -> None:
    path = synthesize(" ".join(["The council met on Tuesday to discuss the new library."] * 8), tmp_path / "long.wav")
    decoder = PcmDecoder(MediaSource(str(path), str(path), "file", live=False, network=False, reason="local file"))
    pcm = decoder.__aiter__()
    await anext(pcm)
    await asyncio.sleep(1.0)  # FFmpeg decodes far ahead and blocks on the full pipe
    started = time.monotonic()
    async with asyncio.timeout(10):
        await pcm.aclose()
    assert time.monotonic() - started < 5 and not decoder.running
