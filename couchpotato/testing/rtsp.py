"""A live RTSP server for tests: GStreamer's RTSP server (``gst-rtsp-server``) playing a WAV at 1x.

FFmpeg can serve RTMP and HLS but not RTSP to a client, so the RTSP source is tested against
GStreamer's server, run by the system Python (its bindings, ``python3-gi`` and
``gir1.2-gst-rtsp-server-1.0``, are Debian packages, not wheels). The audio goes out as RTP L16,
16 kHz mono; every client gets the programme from its start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"

_SERVER = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
wav = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( filesrc location="{wav}" ! wavparse ! audioconvert ! audioresample '
    "! audio/x-raw,format=S16BE,rate=16000,channels=1 ! rtpL16pay name=pay0 pt=96 )"
)
server.get_mount_points().add_factory("/live", factory)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
"""


def rtsp_available() -> str | None:
    """None when an RTSP server can be started here, else why not."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    probe = 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return "GStreamer's RTSP server is not installed (apt install python3-gi gir1.2-gst-rtsp-server-1.0)"
    return None


@contextlib.contextmanager
def rtsp_live(wav: Path) -> Iterator[str]:
    """Serve ``wav`` as ``rtsp://127.0.0.1:<port>/live`` until the block ends."""
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", _SERVER, str(wav.resolve())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the RTSP server did not start (exit {proc.poll()})")
        yield f"rtsp://127.0.0.1:{port}/live"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
