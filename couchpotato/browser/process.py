"""Child processes of a browser session: started in their own process group, tagged, and reaped.

Each process a session starts (Chromium, the FFmpeg recorders) runs in a new process group (killed
as a group) and carries the session's tag in its environment, ``COUCHPOTATO_BROWSER_SESSION``.
The tag finds what left the group: Chromium's crash handler calls ``setsid`` and is reparented to
init, so a group kill alone would leave it running. The group finds what lost the tag: Chromium
starts its audio service with a cleared environment. ``reap`` kills whatever still carries the
tag or is in one of the session's groups when the session ends.

Blocking work (process-table scans, pyvirtualdisplay, libpulse) runs in a thread; ``start_in_thread``
makes such a start safe against cancellation: what was started while the caller was being
cancelled is stopped before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

from .constants import REAP_TIMEOUT_S
from .errors import BrowserUnavailable

log = logging.getLogger(__name__)

TAG_ENV = "COUCHPOTATO_BROWSER_SESSION"
T = TypeVar("T")

# Which Debian package brings a program, for the one-line "not installed" error.
PACKAGES = {"chromium": "chromium", "ffmpeg": "ffmpeg", "Xvfb": "xvfb", "pulseaudio": "pulseaudio"}


def package_hint(program: str) -> str:
    name = os.path.basename(program)
    return f"{name} is not installed (apt install {PACKAGES.get(name, name)})"


async def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    stdin: int | None = asyncio.subprocess.DEVNULL,
    stdout: int | None = asyncio.subprocess.DEVNULL,
    stderr: int | None = asyncio.subprocess.PIPE,
    pass_fds: Sequence[int] = (),
) -> asyncio.subprocess.Process:
    """Start ``argv`` (no shell of ours) in a new session and process group; ``pass_fds`` stay open
    in it. No ``preexec_fn``, ever: it makes CPython fork() instead of vfork(), and fork() runs the
    atfork handlers of the libraries loaded here (OpenBLAS's waits for its busy threads: a deadlock
    while ASR decodes in another thread)."""
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=dict(env),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except FileNotFoundError as e:
        raise BrowserUnavailable(package_hint(argv[0])) from e


async def stop_group(proc: asyncio.subprocess.Process, *, sig: int = signal.SIGTERM, grace_s: float = 3.0) -> None:
    """Signal ``proc``'s process group, wait ``grace_s``, then SIGKILL the group.

    The group is killed even when the leader has exited: Chromium's children outlive it.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            async with asyncio.timeout(grace_s):  # not wait_for: see decoder.py
                await proc.wait()
        except TimeoutError:
            log.debug("pid %d did not stop within %.0f s of signal %d; killing its group", proc.pid, grace_s, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def session_processes(tag: str, groups: Collection[int] = ()) -> list[psutil.Process]:
    """Live (non-zombie) processes of a session: those carrying ``tag`` in their environment, and
    those in one of its process ``groups``. Blocking: scans /proc.

    Both are needed: Chromium starts some children (its audio service, for one) with a cleared
    environment, but they stay in its process group; its crash handler leaves the group, but keeps
    the environment.
    """
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        try:
            if proc.pid == me:
                continue
            ours = (groups and os.getpgid(proc.pid) in groups) or proc.environ().get(TAG_ENV) == tag
            if ours and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def belongs_to(pid: int, tag: str, groups: Collection[int]) -> bool:
    """Whether process ``pid`` is one of the session's (see ``session_processes``). Blocking."""
    try:
        return os.getpgid(pid) in groups or psutil.Process(pid).environ().get(TAG_ENV) == tag
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False


def _kill_and_wait(procs: list[psutil.Process], timeout_s: float) -> list[int]:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    # A process reparented to init stays a zombie until init reaps it: it holds no resources.
    return [p.pid for p in alive if _status(p) not in (None, psutil.STATUS_ZOMBIE)]


def _status(proc: psutil.Process) -> str | None:
    try:
        return str(proc.status())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return "unknown"


async def reap(tag: str, groups: Collection[int] = (), timeout_s: float = REAP_TIMEOUT_S) -> list[int]:
    """SIGKILL every process of the session still running; returns the pids that survived (none)."""
    procs = await asyncio.to_thread(session_processes, tag, groups)
    if not procs:
        return []
    log.debug("reaping %d leftover process(es) of session %s: %s", len(procs), tag, [p.pid for p in procs])
    return await asyncio.to_thread(_kill_and_wait, procs, timeout_s)


WORKDIR_PREFIX = "couchpotato-browser-"
ORPHAN_MIN_AGE_S = 60.0


def new_tag() -> str:
    """A session tag: the owner's pid (so a dead owner's leftovers can be found) and a random part."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _owner(tag: str) -> int | None:
    head = tag.split("-", 1)[0]
    return int(head) if head.isdigit() else None


SWEEP_WAIT_S = 5.0  # how long a sweep waits for the processes it killed to be gone


def sweep_orphans(tmpdir: Path, min_age_s: float = ORPHAN_MIN_AGE_S) -> tuple[list[int], list[Path]]:
    """Kill processes and remove work directories of sessions whose owner process is gone.

    A worker killed outright (SIGKILL, OOM) cannot clean up after itself; the next session does.
    Only what this user owns and whose tag names a pid that no longer exists is touched: processes
    carrying such a tag (and their process groups: Chromium's children), the Xvfb recorded in such
    a session's directory (``xvfb.pid``; Xvfb is started by pyvirtualdisplay, which cannot tag it),
    and, once ``min_age_s`` old, the directory itself. Blocking: scans /proc and ``tmpdir``.
    Returns the pids killed and the directories removed.
    """
    killed: list[int] = []
    victims: list[psutil.Process] = []  # waited for below: SIGKILL takes effect asynchronously
    for proc in psutil.process_iter():
        try:
            owner = _owner(proc.environ().get(TAG_ENV, ""))
            if owner is None or psutil.pid_exists(owner):
                continue
            family = [proc, *proc.children(recursive=True)]  # Chromium's helpers may leave its group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    member.kill()
            victims += family
            killed.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    removed: list[Path] = []
    now = time.time()
    for folder in tmpdir.glob(f"{WORKDIR_PREFIX}*"):
        owner = _owner(folder.name.removeprefix(WORKDIR_PREFIX))
        try:
            st = folder.lstat()
        except OSError:
            continue
        if owner is None or psutil.pid_exists(owner) or st.st_uid != os.getuid():
            continue
        xvfb = _recorded_xvfb(folder / XVFB_PID_FILE)
        if xvfb is not None:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                xvfb.kill()
                killed.append(xvfb.pid)
                victims.append(xvfb)
        if now - st.st_mtime >= min_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    psutil.wait_procs(victims, timeout=SWEEP_WAIT_S)
    return killed, removed


XVFB_PID_FILE = "xvfb.pid"


def _recorded_xvfb(pid_file: Path) -> psutil.Process | None:
    """The Xvfb whose pid a session wrote, if that pid is still that Xvfb (not a reused pid)."""
    try:
        pid = int(pid_file.read_text().strip())
        written = pid_file.stat().st_mtime
        proc = psutil.Process(pid)
        if proc.name() == "Xvfb" and proc.create_time() <= written + 1:
            return proc
    except (OSError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return None


async def start_in_thread(start: Callable[[], T], stop: Callable[[T], object]) -> T:
    """Run a blocking ``start`` in a thread; if the caller is cancelled meanwhile, undo it with ``stop``."""
    task = asyncio.ensure_future(asyncio.to_thread(start))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            started = await task
        except Exception:
            raise asyncio.CancelledError() from None
        await asyncio.to_thread(stop, started)
        raise


async def collect_lines(stream: asyncio.StreamReader, into: deque[str], name: str) -> None:
    """Read a child's stderr line by line into ``into`` (bounded), logging each at debug level."""
    while line := await stream.readline():
        text = line.decode("utf-8", "replace").rstrip()
        if text:
            into.append(text)
            log.debug("%s: %s", name, text)


async def close_uncancellable(close: Callable[[], object]) -> None:
    """Await the coroutine made by ``close`` to its end even if the caller is cancelled meanwhile.

    Shutdown must not stop half-way: a cancellation that arrives during it is re-raised after it.
    """
    coro = close()
    assert asyncio.iscoroutine(coro)
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    task.result()


__all__ = [
    "TAG_ENV",
    "WORKDIR_PREFIX",
    "XVFB_PID_FILE",
    "belongs_to",
    "close_uncancellable",
    "collect_lines",
    "new_tag",
    "package_hint",
    "reap",
    "session_processes",
    "spawn",
    "start_in_thread",
    "stop_group",
    "sweep_orphans",
]
