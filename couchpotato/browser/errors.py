"""Errors of browser capture and of the health verdicts.

    SourceError                                (couchpotato.errors)
    ├── BrowserError                           the browser path cannot start or keep running
    │   ├── BrowserUnavailable                 Xvfb, PulseAudio, Chromium or FFmpeg is not installed
    │   ├── DisplayError                       the virtual display (Xvfb) failed
    │   ├── AudioServerError                   PulseAudio cannot be reached or started, or a sink failed
    │   ├── BrowserCrashed                     Chromium exited while the page was being captured
    │   └── RecorderError                      FFmpeg cannot record the sink or the screen
    └── NoAudio                                the page played no sound for the no-audio timeout
        └── SilenceTimeout                     silent after sound for the (optional) silence timeout

Every message is one line meant for a user, naming the cause and, where there is one, the fix.
"""

from __future__ import annotations

from ..errors import SourceError


class BrowserError(SourceError):
    """The browser path (display, sound server, Chromium, recorder) cannot start or keep running."""


class BrowserUnavailable(BrowserError):
    """A program browser capture needs is not installed."""


class DisplayError(BrowserError):
    """The virtual X display could not be started or died."""


class AudioServerError(BrowserError):
    """PulseAudio cannot be reached or started, or the session's sink cannot be created."""


class BrowserCrashed(BrowserError):
    """Chromium exited while its page was being captured."""


class RecorderError(BrowserError):
    """FFmpeg cannot record the session's sink monitor or screen."""


class NoAudio(SourceError):
    """The source played no sound for longer than the no-audio timeout (health verdict ``no_audio``)."""

    code = "no_audio"


class SilenceTimeout(NoAudio):
    """The source was silent, after it had played sound, for longer than the silence timeout (off
    by default: without it, silence after sound is a health state, not an end)."""

    code = "silence_timeout"


__all__ = [
    "AudioServerError",
    "BrowserCrashed",
    "BrowserError",
    "BrowserUnavailable",
    "DisplayError",
    "NoAudio",
    "RecorderError",
    "SilenceTimeout",
]
