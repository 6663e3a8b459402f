"""One browser capture session: display, sink, recorder, Chromium, owned by one context manager.

``async with BrowserSession(url, proxy_url=...) as session`` brings up, in this order:

1. a private working directory (Chromium's profile and home),
2. an Xvfb display (``VirtualDisplay``),
3. the worker's PulseAudio server (started if none answers) and a null sink for this session,
4. FFmpeg recording the sink's monitor (``MonitorRecorder``), and optionally the screen as MP4,
5. Chromium in kiosk mode on the display, playing into the sink, every request through the
   egress proxy, and a task that keeps Chromium's streams on this session's sink.

Leaving the block (normally, on error, or on cancellation) releases them in reverse order and
does not stop half-way if cancelled again; then any process still carrying the session's tag is
killed and the working directory removed. ``session.pcm()`` yields the page's sound as PCM chunks
and raises ``BrowserCrashed`` if Chromium exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

from ..constants import STALL_TIMEOUT_S
from ..decoder import PcmChunk
from .chromium import Chromium
from .constants import CHROMIUM_BINARY, WINDOW_SIZE_PX
from .display import VirtualDisplay
from .errors import BrowserCrashed, DisplayError
from .process import (
    TAG_ENV,
    WORKDIR_PREFIX,
    XVFB_PID_FILE,
    belongs_to,
    close_uncancellable,
    new_tag,
    reap,
    session_processes,
    sweep_orphans,
)
from .pulse import PulseSink, ensure_server
from .recorder import MonitorRecorder, ScreenRecorder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrowserOptions:
    """How pages are captured.

    Attributes:
        window_size: the display's and Chromium's window size in pixels.
        chromium: the Chromium binary.
        pulse_server: a PulseAudio server to use (e.g. ``unix:/run/pulse/native``); None starts and
            uses the worker's own private daemon.
        pulse_runtime_dir: where the worker's own daemon lives (default: a per-user temp folder).
        record_video: keep an MP4 of the screen and sound at this path.
        stall_timeout_s: no PCM from the sink's monitor for this long is a stall.
        chromium_args: more Chromium flags, before the page's URL (e.g. ``--enable-logging=stderr``
            to see Chromium's own log lines among its stderr lines).
    """

    window_size: tuple[int, int] = WINDOW_SIZE_PX
    chromium: str = CHROMIUM_BINARY
    pulse_server: str | None = None
    pulse_runtime_dir: Path | None = None
    record_video: Path | None = None
    stall_timeout_s: float = STALL_TIMEOUT_S
    chromium_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionResources:
    """What a running session holds, for tests and supervisors to check that it is all released."""

    tag: str
    workdir: Path
    display: str
    xvfb_pid: int
    pulse_server: str
    sink: str
    module_index: int
    groups: tuple[int, ...] = field(default=())  # process groups: Chromium's
    pids: tuple[int, ...] = field(default=())  # the session's processes: Chromium's tree, FFmpeg


class BrowserSession:
    """Chromium showing one page on its own display, its sound recorded from its own sink."""

    def __init__(self, url: str, *, proxy_url: str, options: BrowserOptions | None = None) -> None:
        self.url = url
        self.proxy_url = proxy_url
        self.options = options or BrowserOptions()
        self.tag = new_tag()
        self.workdir: Path | None = None
        self.display: VirtualDisplay | None = None
        self.pulse_server: str | None = None
        self.sink: PulseSink | None = None
        self.recorder: MonitorRecorder | None = None
        self.video: ScreenRecorder | None = None
        self.chromium: Chromium | None = None
        self._stack = contextlib.AsyncExitStack()
        self._groups: tuple[int, ...] = ()
        self.restarts = 0  # Chromiums replaced (restart_chromium)
        self._restarting = False

    async def __aenter__(self) -> BrowserSession:
        try:
            await self._start()
        except BaseException:
            await close_uncancellable(self._stack.aclose)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await close_uncancellable(self._stack.aclose)

    async def _start(self) -> None:
        opts = self.options
        stack = self._stack
        try:
            killed, removed = await asyncio.to_thread(sweep_orphans, Path(tempfile.gettempdir()))
            if killed or removed:
                log.warning("cleaned up after a worker that died: killed %s, removed %s", killed, removed)
        except Exception as e:  # never a reason not to capture
            log.warning("could not look for leftovers of dead workers: %s", e)
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{self.tag}-"))
        stack.push_async_callback(asyncio.to_thread, shutil.rmtree, workdir, True)
        stack.push_async_callback(self._reap)  # runs after every resource below is released
        self.display = await stack.enter_async_context(VirtualDisplay(opts.window_size))
        (workdir / XVFB_PID_FILE).write_text(str(self.display.pid))  # for sweep_orphans, if we die
        self.pulse_server = await ensure_server(opts.pulse_server, opts.pulse_runtime_dir)
        self.sink = await stack.enter_async_context(PulseSink(self.pulse_server))
        tag = {TAG_ENV: self.tag}
        self.recorder = await stack.enter_async_context(
            MonitorRecorder(
                self.sink.monitor,
                server=self.pulse_server,
                env=tag,
                stall_timeout_s=opts.stall_timeout_s,
                attached=functools.partial(self.sink.wait_recorded, 1.0),
            )
        )
        if opts.record_video is not None:
            self.video = await stack.enter_async_context(
                ScreenRecorder(
                    opts.record_video,
                    display=self.display.name,
                    monitor=self.sink.monitor,
                    server=self.pulse_server,
                    env=tag,
                    size=opts.window_size,
                )
            )
        self.chromium = await stack.enter_async_context(self._new_chromium(workdir))
        self._groups = self.groups()
        pin = asyncio.create_task(self._pin(self.sink))
        stack.push_async_callback(_cancel, pin)
        log.debug("browser session %s: display %s, sink %s, %s", self.tag, self.display.name, self.sink.name, self.url)

    def _new_chromium(self, workdir: Path) -> Chromium:
        assert self.display is not None and self.pulse_server is not None and self.sink is not None
        opts = self.options
        return Chromium(
            self.url,
            workdir=workdir,
            display=self.display.name,
            pulse_server=self.pulse_server,
            sink=self.sink.name,
            proxy_url=self.proxy_url,
            tag=self.tag,
            binary=opts.chromium,
            window_size=opts.window_size,
            extra_args=opts.chromium_args,
        )

    async def restart_chromium(self, reason: str) -> None:
        """Replace Chromium with a new one (a fresh profile) on the same display and sink: the
        recorder, hence the media clock, goes on. For a Chromium that renders or plays nothing."""
        assert self.workdir is not None and self.chromium is not None
        self.restarts += 1
        log.warning("browser session %s: %s; starting a new Chromium (restart %d)", self.tag, reason, self.restarts)
        self._restarting = True  # the old one's exit is not a crash
        try:
            await self.chromium.__aexit__(None, None, None)  # its exit on the stack finds it stopped
            new = self._new_chromium(self.workdir / f"restart-{self.restarts}")
            await new.__aenter__()
            self._stack.push_async_callback(new.__aexit__, None, None, None)
            self.chromium = new
            self._groups = (*self._groups, *self.groups())
        finally:
            self._restarting = False

    async def _pin(self, sink: PulseSink) -> None:
        try:
            await sink.pin_streams(lambda pid: belongs_to(pid, self.tag, self.groups()))
        except Exception as e:  # the sound server went away: the recorder reports that
            log.warning("browser session %s: cannot watch its audio streams any more: %s", self.tag, e)

    def groups(self) -> tuple[int, ...]:
        """Process groups of the session: Chromium's (its children stay in it)."""
        pid = self.chromium.pid if self.chromium else None
        return (pid,) if pid else ()

    async def _reap(self) -> None:
        survivors = await reap(self.tag, self._groups)
        if survivors:
            log.error("browser session %s: processes %s survived SIGKILL", self.tag, survivors)

    @property
    def media_epoch(self) -> float | None:
        return self.recorder.media_epoch if self.recorder else None

    def alive(self) -> dict[str, bool]:
        """Whether each process of the session is running."""
        state = {
            "chromium": self.chromium is not None and self.chromium.alive(),
            "ffmpeg": self.recorder is not None and self.recorder.alive(),
            "xvfb": self.display is not None and self.display.alive(),
        }
        if self.options.record_video is not None:
            state["video"] = self.video is not None and self.video.alive()
        return state

    async def pcm(self) -> AsyncGenerator[PcmChunk, None]:
        """The page's sound, from the moment the recorder started (before Chromium did)."""
        assert self.recorder is not None and self.chromium is not None and self.display is not None
        async for chunk in self.recorder.chunks():
            if not self._restarting and not self.chromium.alive():
                why = self.chromium.last_complaint()
                raise BrowserCrashed(
                    f"Chromium exited (code {self.chromium.returncode}) while capturing {self.url}"
                    + (f": {why}" if why else "")
                )
            if not self.display.alive():
                raise DisplayError(f"the virtual display (Xvfb) died while capturing {self.url}")
            yield chunk

    async def resources(self) -> SessionResources:
        """A snapshot of what the session holds now."""
        assert self.workdir and self.display and self.pulse_server and self.sink, "session not started"
        procs = await asyncio.to_thread(session_processes, self.tag, self.groups())
        return SessionResources(
            self.tag,
            self.workdir,
            self.display.name,
            self.display.pid,
            self.pulse_server,
            self.sink.name,
            self.sink.module_index,
            self.groups(),
            tuple(sorted(p.pid for p in procs)),
        )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


__all__ = ["BrowserOptions", "BrowserSession", "SessionResources"]
