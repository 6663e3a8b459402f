"""Every failure a user can meet ends in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from couchpotato.testing import hls_live, serve_directory
from tests.conftest import requires_media_tools
from tests.e2e.conftest import CLI

pytestmark = [pytest.mark.e2e, requires_media_tools]
LOOPBACK_ENV = {**os.environ, "COUCHPOTATO_URL_ALLOWLIST": "127.0.0.0/8"}


def one_line_error(run: Any, *needles: str) -> None:
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("couchpotato: error: ")
    for needle in needles:
        assert needle in lines[-1].lower(), lines[-1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("site")
    (folder / "page.html").write_text("<!doctype html><html><body><p>Not media.</p></body></html>")
    (folder / "notes.txt").write_text("just some text\n" * 50)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=d=2:s=160x120",
            "-c:v",
            "libx264",
            str(folder / "silent.mp4"),
        ],
        check=True,
    )
    with serve_directory(folder) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "needles"),
    [
        ("missing.wav", ("404",)),
        ("page.html", ("html page",)),
        ("notes.txt", ("text",)),
        ("silent.mp4", ("no audio track",)),
    ],
)
def test_http_sources_that_are_not_usable_media(cli: Any, site: str, path: str, needles: tuple[str, ...]) -> None:
    # --mode direct: in auto mode a page goes on to yt-dlp and the browser (tests/browser covers that)
    one_line_error(cli("transcribe", f"{site}/{path}", "--mode", "direct"), *needles)


def test_an_mp4_indexed_at_its_end_from_a_server_that_cannot_seek(
    cli: Any, short_speech: tuple[Path, str], tmp_path: Path
) -> None:
    # FFmpeg writes the index (moov) after the media unless told +faststart: without range requests
    # nothing can be decoded, and that must be an error, not an empty transcript.
    mp4 = tmp_path / "late-index.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(short_speech[0]), "-c:a", "aac", str(mp4)], check=True)
    with serve_directory(tmp_path) as url:
        one_line_error(cli("transcribe", f"{url}/late-index.mp4", "--mode", "direct"), "byte-range")
    with serve_directory(tmp_path, ranges=True) as url:
        run = cli("transcribe", f"{url}/late-index.mp4", "--mode", "direct")
        assert run.returncode == 0 and run.stdout.strip(), run.stderr


def test_unreachable_host(cli: Any, unused_tcp_port: int) -> None:
    one_line_error(cli("transcribe", f"http://127.0.0.1:{unused_tcp_port}/a.wav"), "cannot connect")


def test_unresolvable_host(cli: Any) -> None:
    one_line_error(cli("transcribe", "http://no-such-host.invalid/a.wav"), "cannot resolve")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.wav",
        "http://10.0.0.1/a.wav",
        "http://localhost/a.wav",
    ],
)
def test_private_addresses_are_refused_without_allowlist(cli: Any, url: str) -> None:
    one_line_error(cli("transcribe", url, allow=None), "refused", "couchpotato_url_allowlist")


def test_redirect_to_a_private_address_is_refused(cli: Any) -> None:
    # An allowed server (loopback is allowlisted) redirects to a private address that is not.
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://10.255.0.1/a.wav")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        one_line_error(cli("transcribe", f"http://127.0.0.1:{server.server_address[1]}/a.wav"), "refused", "10.255.0.1")
    finally:
        server.shutdown()
        server.server_close()


def test_local_file_problems(cli: Any, tmp_path: Path) -> None:
    one_line_error(cli("transcribe", str(tmp_path / "nope.wav")), "no such file")
    (tmp_path / "x.txt").write_text("hello")
    one_line_error(cli("transcribe", str(tmp_path / "x.txt")), "not audio or video")
    one_line_error(cli("transcribe", str(tmp_path)), "directory")


def test_bad_usage_exits_2(cli: Any, short_speech: tuple[Path, str], tmp_path: Path) -> None:
    wav = str(short_speech[0])
    bad_args = (["--duration", "-1"], ["--asr-workers", "0"], ["--format", "docx"], ["--language", "fr"],
                ["--silence-timeout", "0"], ["--no-audio-timeout", "-3"])  # fmt: skip
    for args in bad_args:
        run = cli("transcribe", wav, *args)
        assert run.returncode == 2 and "Traceback" not in run.stderr and run.stderr.startswith("couchpotato: error:")
    bad = tmp_path / "bad.toml"
    bad.write_text("[replace]\n'(' = 'x'\n")
    run = cli("transcribe", wav, "--corrections", str(bad))
    assert run.returncode == 2 and "invalid regular expression" in run.stderr


def test_a_stalled_http_stream_times_out(cli: Any, short_speech: tuple[Path, str]) -> None:
    """The server sends a little audio, then nothing: a stall, reported after --stall-timeout."""
    data = short_speech[0].read_bytes()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: 100000000\r\n\r\n")
            conn.sendall(data[:64000])  # about 2 s of audio, then silence on the wire

    threading.Thread(target=serve, daemon=True).start()
    try:
        started = time.monotonic()
        run = cli("transcribe", f"http://127.0.0.1:{port}/a.wav", "--stall-timeout", "3", timeout=60)
        assert time.monotonic() - started < 30
        one_line_error(run, "stalled")
    finally:
        listener.close()
        for c in held:
            c.close()


def test_a_live_stream_that_dies_is_retried_then_given_up(
    cli: Any, short_speech: tuple[Path, str], tmp_path: Path
) -> None:
    """The HLS producer dies mid-stream and its segments vanish: reconnect with backoff, then fail."""
    folder = tmp_path / "hls"
    with hls_live(short_speech[0], folder) as playlist, serve_directory(folder) as url:
        proc = subprocess.Popen(
            [
                str(CLI),
                "transcribe",
                f"{url}/{playlist.name}",
                "--stall-timeout",
                "2",
                "--format",
                "jsonl",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=LOOPBACK_ENV,
            start_new_session=True,
        )
        try:
            time.sleep(3)
            # kill the producer (no #EXT-X-ENDLIST is written) and take its segments away
            subprocess.run(["pkill", "-KILL", "-f", f"hls_segment_filename {folder}"], check=False)
            for f in folder.glob("*.ts"):
                f.unlink()
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "reconnecting" in stderr and "gave up after" in stderr
    assert "Traceback" not in stderr
    lines = out.decode().splitlines()
    assert lines and '"type":"end"' in lines[-1] and '"error"' in lines[-1], "the transcript still ends cleanly"
