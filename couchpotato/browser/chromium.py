"""Chromium for one session: kiosk mode on the session's display, sound into the session's sink.

Isolation. Each Chromium gets a fresh profile and home directory (removed on exit), the session's
display (``DISPLAY``) and sink (``PULSE_SINK``, set before launch so the first stream already goes
there), and no inherited desktop bus or proxy settings.

Egress. Every request goes to the egress proxy (``--proxy-server``), which applies the URL guard to
each destination; ``<-loopback>`` removes Chromium's implicit bypass of the proxy for localhost and
127.0.0.0/8, so a page cannot reach loopback services directly either. Chromium's own resolver is
disabled (``--host-resolver-rules``): what does not go through the proxy cannot even resolve a name.
QUIC is off (it would not use the HTTP proxy) and WebRTC may not use UDP outside the proxy.

Shutdown. Chromium and its children share one process group: SIGTERM, a grace period, then SIGKILL
for the whole group; what escaped the group (the crash handler) is found by the session's tag and
killed by the session (see process.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .constants import AUDIO_BUFFER_FRAMES, CHROMIUM_BINARY, CHROMIUM_TERM_GRACE_S, WINDOW_SIZE_PX
from .devtools import DevToolsPipe
from .errors import BrowserUnavailable
from .process import TAG_ENV, collect_lines, package_hint, spawn, stop_group

_DROPPED_ENV = ("DISPLAY", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY")


def chromium_argv(
    url: str,
    *,
    binary: str = CHROMIUM_BINARY,
    user_data_dir: Path,
    proxy_url: str,
    window_size: tuple[int, int] = WINDOW_SIZE_PX,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Chromium's command line for capturing ``url`` (flags checked on Debian's Chromium 156);
    ``extra_args`` go last before the URL."""
    proxy_host = urlsplit(proxy_url).hostname or "127.0.0.1"
    width, height = window_size
    return [
        binary,
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--disable-features=MediaRouter,DialMediaRouteProvider,Translate,OptimizationHints",
        "--password-store=basic",
        "--noerrdialogs",
        "--disable-session-crashed-bubble",
        f"--user-data-dir={user_data_dir}",
        "--autoplay-policy=no-user-gesture-required",
        f"--audio-buffer-size={AUDIO_BUFFER_FRAMES}",
        f"--proxy-server={proxy_url}",
        "--proxy-bypass-list=<-loopback>",
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {proxy_host}",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        f"--window-size={width},{height}",
        "--window-position=0,0",
        "--kiosk",
        "--remote-debugging-pipe",  # DevTools on fds 3/4 only (devtools.py): no port, nothing else reaches it
        *extra_args,
        url,
    ]


def chromium_env(
    base: Mapping[str, str], *, home: Path, display: str, pulse_server: str, sink: str, tag: str
) -> dict[str, str]:
    """Chromium's environment: ``base`` without desktop/proxy settings, plus the session's own."""
    env = {
        k: v
        for k, v in base.items()
        if k not in _DROPPED_ENV and not k.startswith("PULSE_") and not k.lower().endswith("_proxy")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(home),
        DISPLAY=display,
        PULSE_SERVER=pulse_server,
        PULSE_SINK=sink,
    )
    env[TAG_ENV] = tag
    return env


class Chromium:
    """One Chromium showing ``url``; ``async with`` starts it and stops its whole process tree."""

    def __init__(
        self,
        url: str,
        *,
        workdir: Path,
        display: str,
        pulse_server: str,
        sink: str,
        proxy_url: str,
        tag: str,
        binary: str = CHROMIUM_BINARY,
        window_size: tuple[int, int] = WINDOW_SIZE_PX,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.binary = binary
        self.argv = chromium_argv(
            url,
            binary=binary,
            user_data_dir=workdir / "profile",
            proxy_url=proxy_url,
            window_size=window_size,
            extra_args=extra_args,
        )
        self.env = chromium_env(
            os.environ, home=workdir, display=display, pulse_server=pulse_server, sink=sink, tag=tag
        )
        self.stderr: deque[str] = deque(maxlen=40)
        self.devtools = DevToolsPipe()
        self.started_at: float | None = None  # monotonic, when it was spawned
        self._proc: asyncio.subprocess.Process | None = None
        self._err_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def last_complaint(self) -> str:
        """Chromium's last error line, without the dbus noise of a machine with no desktop bus."""
        for line in reversed(self.stderr):
            if "dbus" not in line.lower() and "unexpected operator" not in line:
                return " ".join(line.split())[:300]
        return ""

    async def __aenter__(self) -> Chromium:
        if shutil.which(self.binary) is None:
            raise BrowserUnavailable(package_hint("chromium"))
        self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            argv, fds = self.devtools.spawn_args(self.argv)
            self._proc = await spawn(argv, self.env, pass_fds=fds)
        except BaseException:
            await self.devtools.close()
            raise
        self.started_at = time.monotonic()
        await self.devtools.open()
        assert self._proc.stderr is not None
        self._err_task = asyncio.ensure_future(collect_lines(self._proc.stderr, self.stderr, "chromium"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # Keep _proc readable for returncode after exit: put it back once stopped.
            await stop_group(proc, grace_s=CHROMIUM_TERM_GRACE_S)
            self._proc = proc
        if self._err_task is not None:
            self._err_task.cancel()
            await asyncio.gather(self._err_task, return_exceptions=True)
        await self.devtools.close()


__all__ = ["Chromium", "chromium_argv", "chromium_env"]
