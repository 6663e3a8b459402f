"""``capture.runtime``: the owner's run with a fake host: a real recorded file through FFmpeg and
the VAD cut into segments in order, the session's duration limit, progress, and a source that
cannot be captured."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from couchpotato.capture import CaptureOptions
from katopotato.api.swaps import swap_status
from katopotato.broker import MemoryBroker
from katopotato.capture import CaptureStore
from katopotato.keys import health_key, transcript_stream

from ..conftest import requires_media_tools
from .conftest import SID, FakeHost, make_capture, owned

pytestmark = [pytest.mark.timeout(120), requires_media_tools]


async def test_the_owner_cuts_a_recorded_file_into_segments(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    host = FakeHost()
    runtime = await owned(make_capture(broker, host, short_speech[0]), announced=False)
    try:
        outcome = await runtime.own()
        probe = runtime.probe(time.time())
        await runtime._publish_health(probe, runtime.supervisor.observe(probe))
    finally:
        await runtime.close()
    assert outcome.kind == "ended" and not outcome.error
    seqs = [s.segment.seq for s in host.segments]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 2, "every segment, in order, once"
    assert all(s.segment.epoch == 0 and s.segment.keep_end > s.segment.keep_start for s in host.segments)
    st = await CaptureStore(broker, SID).load()
    assert st.announced and st.next_seq == len(seqs) and st.owner == host.job_id and st.source_kind == "file"
    assert st.heard_sound, "kept for later instances: they are not judged no_audio"
    assert st.resume_sample >= round(host.segments[-1].segment.keep_end * 16_000) - 1
    assert [e.data["type"] for e in await broker.read(transcript_stream(SID))] == ["session"]
    assert probe.bytes_total > 0 and host.progress_s, "progress was reported"
    # the supervision published what it saw, and the API helpers read the state the run left
    status = await swap_status(broker, SID)
    assert status["capture"]["next_seq"] == len(seqs) and status["swap"] is None
    health = await broker.kv_get(health_key(SID))
    assert health is not None and status["health"] == health.value
    assert health.value["instance"] == host.job_id and health.value["probe"]["bytes_total"] == probe.bytes_total


async def test_the_duration_limit_counts_on_the_sessions_clock(
    broker: MemoryBroker, short_speech: tuple[Path, str]
) -> None:
    host = FakeHost()
    options = CaptureOptions(allow_local=True, duration_s=4.0)
    runtime = await owned(make_capture(broker, host, short_speech[0], options=options), announced=False)
    try:
        outcome = await runtime.own()
    finally:
        await runtime.close()
    assert outcome.kind == "ended" and runtime.inst.reached_limit
    assert host.segments and max(s.segment.end for s in host.segments) <= 4.0 + 1e-6
    assert runtime.inst.pushed_end == 4 * 16_000


async def test_a_source_that_cannot_be_captured_ends_the_run_with_its_error(
    broker: MemoryBroker, tmp_path: Path
) -> None:
    host = FakeHost()
    runtime = await owned(make_capture(broker, host, tmp_path / "missing.wav"), announced=False)
    try:
        outcome = await runtime.own()
    finally:
        await runtime.close()
    assert outcome.kind == "ended" and "missing.wav" in outcome.error
    assert host.segments == [] and host.successors == []
