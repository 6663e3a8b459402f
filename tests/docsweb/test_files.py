"""File sinks: TXT, SRT, VTT and JSONL in the blob store, kept current, and never doubled."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from couchpotato.formats import render
from couchpotato.records import Event, event_from_dict
from docsweb import MemoryCursorStore, SinkManager, parse_outputs
from docsweb.testing import wait_for
from katopotato.blobs import BlobStore, FileBlobStore, blobs_from_url
from katopotato.broker import Broker

from .conftest import replay, stream_source

SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
VTT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


def _seconds(groups: tuple[str, ...]) -> tuple[float, float]:
    h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in groups)
    return h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000


def check_srt(text: str) -> int:
    """Cues numbered 1, 2, 3…, each with a valid time line and text; the number of cues."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    last_start = -1.0
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(n), f"cue {n} is numbered {lines[0]!r}"
        m = SRT_TIME.match(lines[1])
        assert m, lines[1]
        start, end = _seconds(m.groups())
        assert start <= end and start >= last_start - 2.5, (start, end, last_start)  # small overlaps at cuts
        assert lines[2:] and all(line.strip() for line in lines[2:]) and len(lines[2:]) <= 2
        last_start = start
    assert text.endswith("\n\n")
    return len(blocks)


def check_vtt(text: str) -> int:
    assert text.startswith("WEBVTT\n\n")
    blocks = [b for b in text[len("WEBVTT\n\n") :].split("\n\n") if b.strip()]
    for block in blocks:
        lines = block.split("\n")
        m = VTT_TIME.match(lines[0])
        assert m, lines[0]
        start, end = _seconds(m.groups())
        assert start <= end and lines[1:]
    return len(blocks)


def check_jsonl(text: str) -> list[Event]:
    return [event_from_dict(json.loads(line)) for line in text.splitlines()]


async def run_files(
    broker: Broker, blobs: BlobStore, session_id: str, events: list[Event], formats: tuple[str, ...]
) -> SinkManager:
    await replay(broker, session_id, events)
    manager = SinkManager(session_id, stream_source(broker, session_id), MemoryCursorStore(), blobs=blobs)
    await manager.start(parse_outputs([{"type": "file", "format": f, "max_backoff_s": 0.2} for f in formats]))
    await manager.wait(30)
    await manager.close()
    return manager


async def test_srt_vtt_jsonl_and_text_are_valid_and_complete(
    broker: Broker, recorded: list[Event], tmp_path: Path
) -> None:
    blobs = FileBlobStore(tmp_path)
    manager = await run_files(broker, blobs, "files", recorded, ("srt", "vtt", "jsonl", "text"))
    srt, vtt, jsonl, text = [(await blobs.get(s.target)).decode() for s in manager.status()]
    assert all(s.target.startswith("transcripts/files/file-") for s in manager.status())
    assert check_srt(srt) == check_vtt(vtt) >= 5
    assert check_jsonl(jsonl) == [event_from_dict(e.to_dict()) for e in recorded]
    # exactly what `couchpotato transcribe --format …` prints for the same events
    assert (srt, vtt, jsonl, text) == tuple(render(recorded, f) for f in ("srt", "vtt", "jsonl", "text"))


async def test_the_file_holds_a_valid_prefix_while_the_session_runs(
    broker: Broker, recorded: list[Event], tmp_path: Path
) -> None:
    blobs = FileBlobStore(tmp_path)
    half = len(recorded) // 2
    ids = await replay(broker, "growing", recorded[:half])
    manager = SinkManager("growing", stream_source(broker, "growing"), MemoryCursorStore(), blobs=blobs)
    await manager.start(parse_outputs([{"type": "file", "format": "srt", "key": "live/{session_id}.{ext}"}]))
    (runner,) = manager.runners.values()
    await wait_for(lambda: runner.state.cursor == ids[-1])
    partial = (await blobs.get("live/growing.srt")).decode()
    assert partial == render(recorded[:half], "srt") and check_srt(partial) >= 1
    await replay(broker, "growing", recorded[half:])
    await manager.wait(30)
    await manager.close()
    assert (await blobs.get("live/growing.srt")).decode() == render(recorded, "srt")


class CrashingBlobs(FileBlobStore):
    """A blob store whose process 'dies' right after writing the file, before its state, once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.armed = False
        self.crashed = False

    async def put(self, key: str, data: bytes) -> str:
        if self.armed and key.endswith(".state.json"):
            self.armed, self.crashed = False, True
            raise OSError("the machine lost power")
        return await super().put(key, data)


async def test_a_crash_between_the_file_and_its_state_does_not_double(
    broker: Broker, recorded: list[Event], tmp_path: Path
) -> None:
    crashing = CrashingBlobs(tmp_path)
    half = len(recorded) // 2
    ids = await replay(broker, "crash", recorded[:half])
    spec = parse_outputs([{"type": "file", "format": "srt", "interval_s": 0, "max_backoff_s": 60}])
    store = MemoryCursorStore()
    first = SinkManager("crash", stream_source(broker, "crash"), store, blobs=crashing)
    await first.start(spec)
    (runner,) = first.runners.values()
    await wait_for(lambda: runner.state.cursor == ids[-1])
    crashing.armed = True
    await replay(broker, "crash", recorded[half:])
    await wait_for(lambda: crashing.crashed)
    await first.close()  # dead: the file has the new events, its state does not
    key = runner.sink.target
    assert len(await crashing.get(key)) > len(render(recorded[:half], "srt").encode())

    second = SinkManager("crash", stream_source(broker, "crash"), store, blobs=FileBlobStore(tmp_path))
    await second.start(spec)
    await second.wait(30)
    await second.close()
    srt = (await crashing.get(key)).decode()
    assert srt == render(recorded, "srt")
    check_srt(srt)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """AWS cannot be reached here: moto's S3 server stands in, driven by the real boto3 over HTTP."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is not installed")
    import boto3

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(k, v)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="transcripts")
        yield f"s3://transcripts/cp?endpoint={endpoint}"
    finally:
        server.stop()


async def test_files_in_s3(broker: Broker, recorded: list[Event], s3_url: str) -> None:
    blobs = blobs_from_url(s3_url)
    manager = await run_files(broker, blobs, "s3", recorded, ("jsonl", "vtt"))
    jsonl, vtt = [(await blobs.get(s.target)).decode() for s in manager.status()]
    assert jsonl == render(recorded, "jsonl") and vtt == render(recorded, "vtt")
    keys = [b.key for b in await blobs.list("transcripts/s3/")]
    assert len(keys) == 4 and sum(k.endswith(".state.json") for k in keys) == 2
