"""PulseAudio for browser capture: the worker's sound server, and a null sink per session.

The server. Unless one is named explicitly, the worker uses its own private PulseAudio daemon,
reached at ``unix:<tmp>/couchpotato-pulse-<uid>/native``, and starts it when none answers there.
The same command works as root in a container and as a normal user: a private runtime directory
(mode 0700, owned by the caller) holds the socket, pid file, cookie and log; ``-n`` loads no
default modules (no stream-restore, no hardware), only the native protocol on that socket. The
daemon exits by itself ``PULSE_EXIT_IDLE_S`` after its last client, so it never outlives the
worker for long. Two processes that start it at once are safe: PulseAudio's pid-file lock lets
one win, and both then connect.

The sink. Each session loads its own ``module-null-sink`` before Chromium starts, and Chromium is
told to play into it (``PULSE_SINK``); FFmpeg records the sink's monitor. ``PulseSink`` also keeps
the session's streams pinned to its sink (a start-up race can bind a stream elsewhere) and unloads
the module on exit. Sink names carry the owner's pid, so sinks left by a killed worker are
unloaded by the next session that sees them.

libpulse (through pulsectl) blocks, so every call runs on the module's own threads, one at a time
per connection, and is given ``PULSE_CALL_TIMEOUT_S``: a daemon that accepts connections but never
answers is a one-line ``AudioServerError``, and the call's thread is left to it (a sink created
after all is unloaded when its call returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

from .constants import (
    PULSE_CALL_TIMEOUT_S,
    PULSE_EXIT_IDLE_S,
    PULSE_START_TIMEOUT_S,
    PULSE_THREADS,
    SINK_PREFIX,
    SINK_RATE_HZ,
    STREAM_PIN_INTERVAL_S,
)
from .errors import AudioServerError, BrowserUnavailable
from .process import package_hint

log = logging.getLogger(__name__)

T = TypeVar("T")
_start_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=PULSE_THREADS, thread_name_prefix="pulse")
_SINK_NAME = re.compile(rf"sink_name={SINK_PREFIX}-(\d+)-([0-9a-f]+)")


def _pulsectl() -> Any:
    """Import pulsectl lazily: it loads libpulse, which direct capture does not need."""
    try:
        import pulsectl
    except (ImportError, OSError) as e:
        raise BrowserUnavailable(f"libpulse cannot be loaded ({e}); apt install pulseaudio") from e
    return pulsectl


class _NoAnswer(AudioServerError):
    """A libpulse call did not return within its bound."""


async def _call(
    what: str,
    server: str,
    fn: Callable[..., T],
    *args: Any,
    timeout_s: float | None = None,
    undo: Callable[[T], object] | None = None,
) -> T:
    """``fn(*args)`` on the PulseAudio threads; ``AudioServerError`` if it does not return within
    ``timeout_s`` (default ``PULSE_CALL_TIMEOUT_S``; the thread is left to finish, or hang, on its own).
    ``undo`` is applied to what a call returns after its caller stopped waiting (timed out, cancelled)."""
    timeout_s = PULSE_CALL_TIMEOUT_S if timeout_s is None else timeout_s
    future = _pool.submit(fn, *args)
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout_s)
    except BaseException as e:
        if undo is not None:
            future.add_done_callback(functools.partial(_undo_late, undo))
        if isinstance(e, TimeoutError):
            error = f"PulseAudio at {server} does not answer ({what}: nothing within {timeout_s:.0f} s)"
            raise _NoAnswer(error) from None
        raise


def _undo_late(undo: Callable[[T], object], future: Future[T]) -> None:
    if not future.cancelled() and future.exception() is None:
        _pool.submit(undo, future.result())


def default_runtime_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"couchpotato-pulse-{os.getuid()}"


def server_address(runtime_dir: Path) -> str:
    return f"unix:{runtime_dir / 'native'}"


def pulseaudio_argv(runtime_dir: Path) -> list[str]:
    """The daemon's command line: private socket, no default modules, exits when idle."""
    return [
        "pulseaudio",
        "--daemonize=yes",
        "--use-pid-file=yes",
        "--high-priority=no",
        "--realtime=no",
        f"--exit-idle-time={PULSE_EXIT_IDLE_S}",
        "-n",
        f"--log-target=file:{runtime_dir / 'pulse.log'}",
        f"--load=module-native-protocol-unix auth-anonymous=1 socket={runtime_dir / 'native'}",
    ]


def pulseaudio_env(runtime_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The daemon's environment: everything it writes (cookie, state, pid file) stays in ``runtime_dir``."""
    env = {k: v for k, v in base.items() if not k.startswith("PULSE_")}
    env.update(HOME=str(runtime_dir), XDG_RUNTIME_DIR=str(runtime_dir), XDG_CONFIG_HOME=str(runtime_dir / "config"))
    return env


def _answers(address: str) -> bool:
    pulsectl = _pulsectl()
    try:
        with pulsectl.Pulse("couchpotato-probe", server=address, connect=False) as pulse:
            pulse.connect()
            return True
    except pulsectl.PulseError:
        return False


def _prepare_dir(runtime_dir: Path) -> None:
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = runtime_dir.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise AudioServerError(f"{runtime_dir} is not a directory owned by uid {os.getuid()}; remove it and retry")
    if stat.S_IMODE(st.st_mode) & 0o077:
        runtime_dir.chmod(0o700)


def _start_daemon(folder: Path) -> bytes:
    """Run ``pulseaudio --daemonize`` for ``folder``; its stderr. Blocking."""
    if shutil.which("pulseaudio") is None:
        raise BrowserUnavailable(package_hint("pulseaudio"))
    with _start_lock:  # one start at a time in this process (other processes: the pid-file lock)
        _prepare_dir(folder)
        try:
            done = subprocess.run(
                pulseaudio_argv(folder),
                env=pulseaudio_env(folder, os.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=PULSE_START_TIMEOUT_S,
                start_new_session=True,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AudioServerError(f"PulseAudio did not start within {PULSE_START_TIMEOUT_S:.0f} s") from e
    return done.stderr


def _last_complaint(folder: Path, stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").splitlines()
    with contextlib.suppress(OSError):
        lines += (folder / "pulse.log").read_text(errors="replace").splitlines()
    errors = [ln for ln in lines if ln.startswith("E:")]
    last = (errors or [ln for ln in lines if ln.strip()] or ["no message"])[-1]
    return " ".join(last.split())[:300]


async def ensure_server(address: str | None = None, runtime_dir: Path | None = None) -> str:
    """The PulseAudio server to use: ``address`` if given, else the worker's own, started if needed."""
    if address:
        if not await _call("connecting", address, _answers, address):
            raise AudioServerError(f"PulseAudio at {address} does not answer")
        return address
    folder = runtime_dir or default_runtime_dir()
    own = server_address(folder)
    if await _call("connecting", own, _answers, own):
        return own
    stderr = await _call("starting", own, _start_daemon, folder, timeout_s=PULSE_START_TIMEOUT_S + 5.0)
    # A daemon that lost the race to another worker's exits non-zero: what counts is an answer.
    if await _call("connecting", own, _answers, own):
        log.info("started PulseAudio at %s", own)
        return own
    raise AudioServerError(f"PulseAudio did not start: {_last_complaint(folder, stderr)}")


@dataclass
class _Sink:
    pulse: Any
    module: int
    index: int
    monitor: int = -1  # index of the sink's monitor source


class PulseSink:
    """A null sink for one session, on ``server``; ``monitor`` is what FFmpeg records.

    ``async with PulseSink(server) as sink``: the sink exists and ``sink.name`` is set. On exit the
    module is unloaded and the connection closed, even on error or cancellation.
    """

    def __init__(self, server: str, name: str | None = None) -> None:
        self.server = server
        self.name = name or f"{SINK_PREFIX}-{os.getpid()}-{secrets.token_hex(4)}"
        self.moved_streams = 0
        self._sink: _Sink | None = None
        self._lock = asyncio.Lock()

    @property
    def monitor(self) -> str:
        return f"{self.name}.monitor"

    @property
    def module_index(self) -> int:
        assert self._sink is not None, "sink not created"
        return self._sink.module

    async def __aenter__(self) -> PulseSink:
        try:
            self._sink = await _call("creating the sink", self.server, self._create, undo=_destroy)
        except _NoAnswer as e:
            raise AudioServerError(f"cannot create the session's sink on {self.server}: {e}") from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        sink, self._sink = self._sink, None
        if sink is not None:
            async with self._lock:
                try:
                    await _call("unloading the sink", self.server, _destroy, sink)
                except AudioServerError as e:
                    log.warning("sink %s left loaded: %s", self.name, e)

    def _create(self) -> _Sink:
        pulsectl = _pulsectl()
        pulse = pulsectl.Pulse(f"couchpotato {self.name}", server=self.server, connect=False)
        try:
            pulse.connect()
            if self.server.startswith("unix:"):  # pids are only meaningful on this machine
                _unload_orphans(pulse)
            module = pulse.module_load(
                "module-null-sink",
                f"sink_name={self.name} rate={SINK_RATE_HZ} sink_properties=device.description={self.name}",
            )
        except pulsectl.PulseError as e:
            pulse.close()
            raise AudioServerError(f"cannot create the session's sink on {self.server}: {e}") from e
        try:
            info = next(s for s in pulse.sink_list() if s.name == self.name)
        except (StopIteration, pulsectl.PulseError) as e:
            _destroy(_Sink(pulse, module, -1))
            raise AudioServerError(f"sink {self.name} did not appear on {self.server}") from e
        log.debug("sink %s (module %d) on %s", self.name, module, self.server)
        return _Sink(pulse, module, info.index, info.monitor_source)

    async def wait_recorded(self, timeout_s: float) -> bool:
        """Wait until a recording stream is attached to the sink's monitor; False on timeout.

        The null sink renders in large blocks while nothing plays, so the first PCM can take two
        seconds to arrive; the recording stream itself is attached within milliseconds, and once it
        is, nothing played into the sink is lost.
        """
        sink = self._sink
        assert sink is not None, "sink not created"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            async with self._lock:
                outputs = await _call("listing recordings", self.server, sink.pulse.source_output_list)
            if any(o.source == sink.monitor for o in outputs):
                return True
            await asyncio.sleep(0.05)
        return False

    async def streams(self) -> list[dict[str, Any]]:
        """The playback streams (sink inputs) on the server: pid, application and the sink they play to."""
        sink = self._sink
        if sink is None:
            return []
        async with self._lock:
            inputs = await _call("listing streams", self.server, sink.pulse.sink_input_list)
        return [
            {
                "index": si.index,
                "sink": si.sink,
                "ours": si.sink == sink.index,
                "pid": int(si.proplist.get("application.process.id", "0") or 0),
                "application": si.proplist.get("application.name", ""),
            }
            for si in inputs
        ]

    async def pin_streams(self, is_ours: Callable[[int], bool]) -> None:
        """Keep the session's streams on its sink, for as long as the session runs.

        ``is_ours(pid)`` (blocking; run in a thread) says whether a stream's process belongs to this
        session. A stream of ours found on another sink is moved back.
        """
        known: dict[int, bool] = {}
        while self._sink is not None:
            sink = self._sink
            for stream in await self.streams():
                if stream["ours"] or not stream["pid"]:
                    continue
                pid = stream["pid"]
                if pid not in known:
                    known[pid] = await asyncio.to_thread(is_ours, pid)
                if known[pid]:
                    log.warning(
                        "stream %d of pid %d played to sink %d; moving it to %s",
                        stream["index"],
                        pid,
                        stream["sink"],
                        self.name,
                    )
                    async with self._lock:
                        with contextlib.suppress(Exception):
                            await _call("moving a stream", self.server, sink.pulse.sink_input_move,
                                        stream["index"], sink.index)  # fmt: skip
                    self.moved_streams += 1
            await asyncio.sleep(STREAM_PIN_INTERVAL_S)


def _destroy(sink: _Sink) -> None:
    try:
        if sink.module >= 0:
            sink.pulse.module_unload(sink.module)
    except Exception as e:  # the server may be gone already, and the module with it
        log.debug("unloading module %d: %s", sink.module, e)
    finally:
        sink.pulse.close()


def _unload_orphans(pulse: Any) -> None:
    """Unload null sinks of ours whose owning process is gone (a worker that was killed)."""
    for module in pulse.module_list():
        match = _SINK_NAME.search(module.argument or "")
        if match and not psutil.pid_exists(int(match.group(1))):
            log.info("unloading orphaned sink module %d (%s)", module.index, match.group(0))
            with contextlib.suppress(Exception):
                pulse.module_unload(module.index)


def modules_of(server: str) -> list[tuple[int, str, str]]:
    """(index, name, argument) of every module loaded on ``server``. Blocking; for tests and tools."""
    pulsectl = _pulsectl()
    with pulsectl.Pulse("couchpotato-inspect", server=server) as pulse:
        return [(m.index, m.name, m.argument or "") for m in pulse.module_list()]


__all__ = [
    "PulseSink",
    "default_runtime_dir",
    "ensure_server",
    "modules_of",
    "pulseaudio_argv",
    "pulseaudio_env",
    "server_address",
]
