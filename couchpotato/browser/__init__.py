"""Browser capture: any web page, rendered by Chromium on Xvfb, its sound recorded from a sink.

One ``BrowserSession`` per page: its own Xvfb display, its own PulseAudio null sink (created
before Chromium starts), Chromium in kiosk mode playing into that sink with every request going
through the egress proxy, and FFmpeg recording the sink's monitor into the same PCM stream as
direct media. See docs/browser.md for the design.
"""

from __future__ import annotations

from .errors import (
    AudioServerError,
    BrowserCrashed,
    BrowserError,
    BrowserUnavailable,
    DisplayError,
    NoAudio,
    RecorderError,
    SilenceTimeout,
)
from .session import BrowserOptions, BrowserSession, SessionResources

__all__ = [
    "AudioServerError",
    "BrowserCrashed",
    "BrowserError",
    "BrowserOptions",
    "BrowserSession",
    "BrowserUnavailable",
    "DisplayError",
    "NoAudio",
    "RecorderError",
    "SessionResources",
    "SilenceTimeout",
]
