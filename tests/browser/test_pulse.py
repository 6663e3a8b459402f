"""The worker's PulseAudio: started when none answers, as root and as a normal user, and private."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from couchpotato.browser.errors import AudioServerError
from couchpotato.browser.pulse import (
    PulseSink,
    _answers,
    _prepare_dir,
    ensure_server,
    modules_of,
    pulseaudio_argv,
    pulseaudio_env,
    server_address,
)
from tests.browser.conftest import requires_browser

pytestmark = [pytest.mark.e2e, requires_browser]


async def _sink_on(address: str) -> bool:
    async with PulseSink(address) as sink:
        return any(sink.name in arg for _, _, arg in modules_of(address))


def _stop_daemon(runtime_dir: Path) -> None:
    pid_file = runtime_dir / "pulse" / "pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        if psutil.pid_exists(pid) and psutil.Process(pid).name() == "pulseaudio":
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and psutil.pid_exists(pid):
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
                time.sleep(0.05)


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short path in /tmp: a unix socket path must stay under 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="cp-pulse-"))
    try:
        yield folder
    finally:
        _stop_daemon(folder)
        shutil.rmtree(folder, ignore_errors=True)


async def test_started_when_none_answers_then_reused(runtime_dir: Path) -> None:
    address = server_address(runtime_dir)
    assert not _answers(address)
    assert await ensure_server(runtime_dir=runtime_dir) == address
    pid = int((runtime_dir / "pulse" / "pid").read_text().split()[0])
    assert psutil.Process(pid).name() == "pulseaudio"
    assert await ensure_server(runtime_dir=runtime_dir) == address
    assert int((runtime_dir / "pulse" / "pid").read_text().split()[0]) == pid, "a second daemon was started"
    # Only the native protocol: no stream-restore or device modules that could reroute a session.
    assert [name for _, name, _ in modules_of(address)] == ["module-native-protocol-unix"]
    async with PulseSink(address) as sink:
        assert any(sink.name in arg for _, _, arg in modules_of(address))
    assert [name for _, name, _ in modules_of(address)] == ["module-native-protocol-unix"]
    assert (os.stat(runtime_dir).st_mode & 0o777) == 0o700


async def test_a_named_server_that_does_not_answer_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioServerError, match=r"^PulseAudio at unix:.* does not answer$"):
        await ensure_server(f"unix:{tmp_path}/nothing")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
def test_runtime_dir_owned_by_someone_else_is_refused() -> None:
    folder = Path(tempfile.mkdtemp(prefix="cp-pulse-"))
    try:
        os.chown(folder, 65534, 65534)
        with pytest.raises(AudioServerError, match="is not a directory owned by uid 0"):
            _prepare_dir(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
@pytest.mark.skipif(shutil.which("runuser") is None, reason="needs runuser (util-linux) to switch user")
def test_the_same_command_starts_it_as_a_normal_user() -> None:
    # The worker's exact command line and environment, run as nobody (this machine's Python lives
    # under /root, which nobody cannot read, so the command is run rather than the Python around it).
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="cp-pulse-"))
    runtime = folder / "rt"
    runtime.mkdir(mode=0o700)
    for path in (folder, runtime):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    env = pulseaudio_env(runtime, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    try:
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
             *pulseaudio_argv(runtime)],
            capture_output=True, text=True, timeout=30, cwd="/", check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        address = server_address(runtime)
        assert _answers(address)
        pid = int((runtime / "pulse" / "pid").read_text().split()[0])
        assert psutil.Process(pid).uids().real == nobody.pw_uid
        assert asyncio.run(_sink_on(address)), "a session cannot create its sink there"
    finally:
        _stop_daemon(runtime)
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_server_that_accepts_but_never_answers_is_an_error_not_a_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung daemon (its socket accepts, nothing answers) is reported within the call timeout, both
    when checking a named server and when creating a session's sink, instead of hanging the capture."""
    import socket

    import couchpotato.browser.pulse as pulse

    monkeypatch.setattr(pulse, "PULSE_CALL_TIMEOUT_S", 1.5)
    path = tmp_path / "native"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)  # the kernel completes the connections; nobody ever reads or answers them
    address = f"unix:{path}"
    try:
        started = time.monotonic()
        with pytest.raises(AudioServerError, match="does not answer"):
            await ensure_server(address)
        assert time.monotonic() - started < 1.5 + 2.0
        started = time.monotonic()
        with pytest.raises(AudioServerError, match=r"cannot create the session's sink.*does not answer"):
            async with PulseSink(address):
                pass
        assert time.monotonic() - started < 1.5 + 2.0
    finally:
        listener.close()  # the abandoned connects see the socket close and their threads end
