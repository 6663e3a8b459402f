"""A virtual X display per session: Xvfb started through pyvirtualdisplay.

Xvfb picks a free display number itself (``-displayfd``), so sessions started at the same time do
not race for one; the global ``DISPLAY`` is never touched (``manage_global_env=False``): the
session passes its display to Chromium and FFmpeg explicitly. pyvirtualdisplay blocks while Xvfb
starts and stops, so both run in a thread.
"""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from pyvirtualdisplay.display import Display

from .constants import DISPLAY_DEPTH_BITS, WINDOW_SIZE_PX
from .errors import BrowserUnavailable, DisplayError
from .process import package_hint, start_in_thread


class VirtualDisplay:
    """An Xvfb display for one session; ``async with VirtualDisplay() as d``: ``d.name`` is ``:N``."""

    def __init__(self, size: tuple[int, int] = WINDOW_SIZE_PX, depth: int = DISPLAY_DEPTH_BITS) -> None:
        self.size = size
        self.depth = depth
        self._display: Display | None = None

    @property
    def name(self) -> str:
        assert self._display is not None, "display not started"
        return str(self._display.new_display_var)

    @property
    def pid(self) -> int:
        assert self._display is not None, "display not started"
        return int(self._display.pid)

    def alive(self) -> bool:
        return self._display is not None and bool(self._display.is_alive())

    async def __aenter__(self) -> VirtualDisplay:
        self._display = await start_in_thread(self._start, _stop)
        return self

    async def __aexit__(self, *exc: object) -> None:
        display, self._display = self._display, None
        if display is not None:
            await asyncio.to_thread(_stop, display)

    def _start(self) -> Display:
        if shutil.which("Xvfb") is None:
            raise BrowserUnavailable(package_hint("Xvfb"))
        display = Display(backend="xvfb", size=self.size, color_depth=self.depth, manage_global_env=False)
        try:
            display.start()
        except Exception as e:  # pyvirtualdisplay's XStartError and friends carry Xvfb's stderr
            _stop(display)
            detail = " ".join(str(e).split())[:300]
            raise DisplayError(f"cannot start the virtual display (Xvfb): {detail}") from e
        return display


def _stop(display: Any) -> None:
    try:
        display.stop()
    except Exception:  # never started, or already gone
        return


__all__ = ["VirtualDisplay"]
