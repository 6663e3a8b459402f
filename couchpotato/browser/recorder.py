"""FFmpeg recording of a session: the sink's monitor as PCM, and optionally the screen as MP4.

``MonitorRecorder`` runs the core's ``PcmDecoder`` on the sink's monitor (``-f pulse``), so browser
audio arrives as the same ``PcmChunk`` stream, on the same media clock, as direct media, with the
same stall detection and restart-with-backoff. It is started before Chromium (and Chromium only
once FFmpeg's recording stream is attached to the monitor), and a pump task
drains FFmpeg into a queue from then on: the first sound a page makes is not lost while the page
loads, and a slow consumer never blocks FFmpeg (which would make PulseAudio drop audio).

``ScreenRecorder`` keeps an MP4 of the display and the sink (x11grab + pulse), written as a
fragmented MP4 so that the file is playable even if FFmpeg is killed; it is stopped with SIGINT so
FFmpeg finishes the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

from ..decoder import PcmChunk, PcmDecoder
from ..errors import SourceError
from ..source import MediaSource
from .constants import RECORDER_START_TIMEOUT_S, VIDEO_FRAME_RATE, VIDEO_STOP_GRACE_S, WINDOW_SIZE_PX
from .errors import RecorderError
from .process import collect_lines, spawn, stop_group

log = logging.getLogger(__name__)

_END = object()


class MonitorRecorder:
    """PCM of a PulseAudio monitor source; ``chunks()`` yields it from the moment of entry."""

    def __init__(
        self,
        monitor: str,
        *,
        server: str,
        env: Mapping[str, str],
        stall_timeout_s: float,
        attached: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.monitor = monitor
        self._attached = attached
        source = MediaSource(monitor, monitor, "pulse", live=True, network=False, reason="PulseAudio monitor")
        self.decoder = PcmDecoder(source, stall_timeout_s=stall_timeout_s, env={**env, "PULSE_SERVER": server})
        self.bytes_read = 0
        self._queue: asyncio.Queue[PcmChunk | BaseException | object] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._first = asyncio.Event()

    @property
    def media_epoch(self) -> float | None:
        return self.decoder.media_epoch

    def alive(self) -> bool:
        return self._pump is not None and not self._pump.done() and self.decoder.running

    async def __aenter__(self) -> MonitorRecorder:
        self._pump = asyncio.create_task(self._run())
        first = asyncio.ensure_future(self._first.wait())
        attached = asyncio.ensure_future(self._wait_attached())
        try:
            await asyncio.wait(
                {first, attached, self._pump},
                timeout=RECORDER_START_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except BaseException:
            await self._stop()
            raise
        finally:
            first.cancel()
            attached.cancel()
            await asyncio.gather(first, attached, return_exceptions=True)
        ready = self._first.is_set() or (attached.done() and not attached.cancelled() and attached.exception() is None)
        if not ready or self._pump.done():
            await self._stop()
            error = self._queue.get_nowait() if not self._queue.empty() else None
            if isinstance(error, SourceError):
                raise RecorderError(f"cannot record the session's sink: {error}") from error
            raise RecorderError(f"FFmpeg gave no audio from {self.monitor} within {RECORDER_START_TIMEOUT_S:.0f} s")
        return self

    async def _wait_attached(self) -> bool:
        if self._attached is None:
            await asyncio.Event().wait()  # only the first chunk tells
        else:
            while not await self._attached():
                pass
        return True

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _stop(self) -> None:
        # Cancel until it is done: a cancellation can be lost in the stdlib's wait_for on 3.11, and
        # a pump left running would read the monitor forever.
        while self._pump is not None and not self._pump.done():
            self._pump.cancel()
            await asyncio.wait({self._pump}, timeout=5.0)  # longer than the decoder's SIGTERM grace
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)

    async def _run(self) -> None:
        try:
            async for chunk in self.decoder:
                self.bytes_read += 2 * len(chunk.samples)
                self._queue.put_nowait(chunk)
                self._first.set()
            self._queue.put_nowait(_END)
        except SourceError as e:
            self._queue.put_nowait(e)

    async def chunks(self) -> AsyncIterator[PcmChunk]:
        """Every chunk recorded since entry; raises the recorder's error if FFmpeg gives up, and
        ``RecorderError`` if the pump stopped without a word (never a wait with nothing to wait for)."""
        while True:
            item = await self._next()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise RecorderError(f"recording the page's sound failed: {item}") from item
            assert isinstance(item, PcmChunk)
            yield item

    async def _next(self) -> PcmChunk | BaseException | object:
        if not self._queue.empty() or self._pump is None:
            return self._queue.get_nowait() if not self._queue.empty() else await self._queue.get()
        getter = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({getter, self._pump}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()
                await asyncio.gather(getter, return_exceptions=True)
        if getter.done() and not getter.cancelled():
            return getter.result()
        if not self._queue.empty():  # the pump's last word arrived as it ended
            return self._queue.get_nowait()
        why = self._pump.exception() if not self._pump.cancelled() else None
        return SourceError(f"the recorder stopped ({type(why).__name__ if why else 'cancelled'}: {why})")


def screen_argv(display: str, monitor: str, out: Path, size: tuple[int, int] = WINDOW_SIZE_PX) -> list[str]:
    """FFmpeg's command line for an MP4 of ``display`` with the sound of ``monitor``."""
    width, height = size
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-nostdin",
        "-f",
        "x11grab",
        "-draw_mouse",
        "0",
        "-framerate",
        str(VIDEO_FRAME_RATE),
        "-video_size",
        f"{width}x{height}",
        "-i",
        f"{display}+0,0",
        "-f",
        "pulse",
        "-name",
        "couchpotato-video",
        "-i",
        monitor,
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "30",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(2 * VIDEO_FRAME_RATE),
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-movflags",
        "+frag_keyframe+empty_moov+default_base_moof",
        "-y",
        str(out),
    ]


class ScreenRecorder:
    """An MP4 of the session's display and sink, written to ``out`` while the session runs."""

    def __init__(
        self,
        out: Path,
        *,
        display: str,
        monitor: str,
        server: str,
        env: Mapping[str, str],
        size: tuple[int, int] = WINDOW_SIZE_PX,
    ) -> None:
        self.out = out
        self.argv = screen_argv(display, monitor, out, size)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PULSE_")},
            **env,
            "PULSE_SERVER": server,
        }
        self.stderr: deque[str] = deque(maxlen=40)
        self._proc: asyncio.subprocess.Process | None = None
        self._err_task: asyncio.Task[None] | None = None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def __aenter__(self) -> ScreenRecorder:
        if not self.out.parent.is_dir():
            raise RecorderError(f"cannot record video to {self.out}: {self.out.parent} is not a directory")
        self._proc = await spawn(self.argv, self.env)
        assert self._proc.stderr is not None
        self._err_task = asyncio.ensure_future(collect_lines(self._proc.stderr, self.stderr, "ffmpeg-video"))
        # A bad option or an unreachable display makes FFmpeg exit at once: report it now.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await self._proc.wait()
        if self._proc.returncode is not None:
            await self.__aexit__()
            last = self.stderr[-1] if self.stderr else f"exit code {self._proc.returncode}"
            raise RecorderError(f"cannot record video to {self.out}: {last}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None:
            await stop_group(self._proc, sig=signal.SIGINT, grace_s=VIDEO_STOP_GRACE_S)
            if self._proc.returncode not in (0, 255, -signal.SIGINT):
                log.warning(
                    "video recorder ended with code %s: %s",
                    self._proc.returncode,
                    self.stderr[-1] if self.stderr else "",
                )
        if self._err_task is not None:
            await asyncio.gather(self._err_task, return_exceptions=True)


__all__ = ["MonitorRecorder", "ScreenRecorder", "screen_argv"]
