"""The S3 blob store against moto's S3 server over HTTP, driven by the real boto3 (AWS cannot be
reached here). The endpoint comes from boto3's own ``AWS_ENDPOINT_URL``, as a user sets it.

* a session keeps its audio by default with ``COUCHPOTATO_BLOBS=s3://bucket/prefix``: it lands in
  the bucket and ``GET /v1/sessions/{id}/audio`` reads it back;
* large objects go up in parts; throttling is retried with backoff; a missing bucket and refused
  credentials are one clear line at start-up (``katopotato serve`` exits 2).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import io
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from katopotato.blobs import S3BlobStore, blobs_from_url
from katopotato.errors import BlobError, ConfigError

from .conftest import KATOPOTATO, free_port, serve_env

moto_server = pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is not installed")
boto3 = pytest.importorskip("boto3")

pytestmark = pytest.mark.timeout(120)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client on moto, a fresh bucket ``bucket`` in it, and the environment a user sets."""
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = boto3.client("s3")
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket="bucket")
    yield client
    for obj in client.list_objects_v2(Bucket="bucket").get("Contents", []):
        client.delete_object(Bucket="bucket", Key=obj["Key"])


def keys(s3: Any, prefix: str = "") -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket="bucket", Prefix=prefix).get("Contents", [])]


async def test_a_session_keeps_its_audio_in_the_bucket_by_default(make_service: Any, s3: Any, speech_url: str) -> None:
    async with make_service(blobs_url="s3://bucket/prefix") as r:
        assert r.service.settings.keep_audio is True
        status, s = await r.post("/v1/sessions", {"url": speech_url})  # keep_audio not given
        assert status == 201 and s["keep_audio"] is True, s
        sid = s["id"]
        status, events = await r.sse(sid)
        assert events[-1][1]["type"] == "end"
        kept = keys(s3, f"prefix/sessions/{sid}/audio/")
        assert len(kept) == events[-1][1]["segments"] >= 2, kept  # one blob per segment, by media time
        assert keys(s3, f"prefix/audio/{sid}/") == []  # the per-segment work blobs were released
        # what the bucket holds, placed by media time, is what the API plays back
        whole = np.zeros(0, dtype="<i2")
        for key in kept:
            at = int(key.rsplit("/", 1)[1].removesuffix(".s16"))
            pcm = np.frombuffer(s3.get_object(Bucket="bucket", Key=key)["Body"].read(), dtype="<i2")
            if len(whole) < at + len(pcm):
                whole = np.concatenate([whole, np.zeros(at + len(pcm) - len(whole), dtype="<i2")])
            whole[at : at + len(pcm)] = pcm
        async with r.http.get(r.url(f"/v1/sessions/{sid}/audio?start=1&end=4"), headers=r.auth()) as resp:
            assert resp.status == 200 and resp.content_type == "audio/wav"
            wav = await resp.read()
        with wave.open(io.BytesIO(wav)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            clip = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        assert len(clip) == 3 * 16000
        assert np.array_equal(clip, whole[16000 : 4 * 16000])
        assert float(np.sqrt(np.mean(clip.astype(np.float64) ** 2))) > 100  # speech, not silence
        status, err = await r.get(f"/v1/sessions/{sid}/audio?start=500&end=501")
        assert status == 404 and err["error"]["code"] == "audio_not_kept"

        status, s2 = await r.post("/v1/sessions", {"url": speech_url, "keep_audio": False})
        assert status == 201 and s2["keep_audio"] is False
        await r.sse(s2["id"])
        assert keys(s3, f"prefix/sessions/{s2['id']}/") == [] and keys(s3, f"prefix/audio/{s2['id']}/") == []
        status, err = await r.get(f"/v1/sessions/{s2['id']}/audio")
        assert status == 404 and err["error"]["code"] == "audio_not_kept"


async def test_large_objects_go_up_in_parts(s3: Any) -> None:
    mib = 1024 * 1024
    data = np.random.default_rng(7).integers(0, 256, 11 * mib, dtype=np.uint8).tobytes()
    async with S3BlobStore("bucket", "big", multipart_threshold_bytes=8 * mib, multipart_chunk_bytes=5 * mib) as store:
        await store.put("one/large.bin", data)
        await store.put("one/small.bin", b"x" * 100)
        assert await store.get("one/large.bin") == data
        head = s3.head_object(Bucket="bucket", Key="big/one/large.bin")
        assert head["ETag"].strip('"').endswith("-3")  # the ETag of an object uploaded in 3 parts
        assert "-" not in s3.head_object(Bucket="bucket", Key="big/one/small.bin")["ETag"]
        assert [(b.key, b.size) for b in await store.list("one/")] == [
            ("one/large.bin", len(data)),
            ("one/small.bin", 100),
        ]


class _Throttling(http.server.BaseHTTPRequestHandler):
    """Forwards to moto, but answers the first ``failures`` requests with S3's 503 SlowDown."""

    target: tuple[str, int]
    failures = 0
    seen: list[int]

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(1)
        if len(self.seen) <= self.failures:
            payload = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection(*self.target, timeout=10)
        conn.request(self.command, self.path, body=body, headers=dict(self.headers))
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def throttling_proxy(moto_endpoint: str, failures: int) -> Iterator[tuple[str, list[int]]]:
    host, port = moto_endpoint.removeprefix("http://").split(":")
    handler = type("Handler", (_Throttling,), {"target": (host, int(port)), "failures": failures, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    finally:
        server.shutdown()
        server.server_close()


async def test_throttling_is_retried_with_backoff(s3: Any, moto_endpoint: str) -> None:
    with throttling_proxy(moto_endpoint, failures=2) as (endpoint, seen):
        store = S3BlobStore("bucket", "retry", endpoint_url=endpoint)
        await store.put("a.bin", b"kept after two refusals")
        assert len(seen) == 3
        assert s3.get_object(Bucket="bucket", Key="retry/a.bin")["Body"].read() == b"kept after two refusals"
    with throttling_proxy(moto_endpoint, failures=5) as (endpoint, seen):
        store = S3BlobStore("bucket", "retry", endpoint_url=endpoint, max_attempts=2)
        with pytest.raises(BlobError, match="SlowDown"):
            await store.put("b.bin", b"never")
        assert len(seen) == 2


async def test_a_missing_bucket_is_one_clear_line_at_start_up(s3: Any) -> None:
    with pytest.raises(ConfigError, match="the S3 bucket 'nosuchbucket' does not exist"):
        async with blobs_from_url("s3://nosuchbucket/prefix"):
            pass


def test_serve_with_a_missing_bucket_exits_with_one_line(s3: Any, tmp_path: Path, moto_endpoint: str) -> None:
    if not KATOPOTATO.exists():
        pytest.skip(f"{KATOPOTATO} not installed (run make install)")
    env = serve_env(tmp_path / "data", COUCHPOTATO_BLOBS="s3://nosuchbucket/prefix", **CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = moto_endpoint
    proc = subprocess.run(
        [str(KATOPOTATO), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the S3 bucket 'nosuchbucket' does not exist" in lines[0], proc.stderr


@pytest.fixture
def moto_with_auth() -> Iterator[str]:
    """A moto server that checks credentials (``INITIAL_NO_AUTH_ACTION_COUNT=0``): it knows none."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            with contextlib.suppress(OSError), contextlib.closing(conn):
                conn.request("GET", "/moto-api/")
                conn.getresponse()
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_refused_credentials_are_one_clear_line(moto_with_auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_with_auth)
    with pytest.raises(ConfigError, match="S3 refused the credentials") as e:
        async with blobs_from_url("s3://bucket/prefix"):
            pass
    assert "\n" not in str(e.value)
