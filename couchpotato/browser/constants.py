"""Tunables of browser capture, with their units in their names."""

from __future__ import annotations

CHROMIUM_BINARY = "/usr/bin/chromium"  # Debian's package; its wrapper execs the real binary in place
WINDOW_SIZE_PX = (1280, 720)
# Chromium's audio output buffer, in frames at 48 kHz (about 170 ms). Its default (a few ms) underruns
# when the cores are busy, and each underrun shifts or drops audio; measured here with 2-3 sessions
# at once on 2 busy cores: default buffer 5-6 of 7 seconds intact, 8192 frames 7 of 7 (see
# docs/browser.md). Latency does not matter for transcription.
AUDIO_BUFFER_FRAMES = 8192
DISPLAY_DEPTH_BITS = 24

# PulseAudio: a private per-user daemon, shared by the sessions of a worker, that exits by itself
# this long after its last client (session) left.
PULSE_EXIT_IDLE_S = 60
PULSE_START_TIMEOUT_S = 15.0
# A libpulse call (connect, load a module, list streams) that takes longer is a daemon that does not
# answer (its socket accepts, nothing replies): an error, never a capture that waits forever. Such
# calls run on their own few threads, so a hung one cannot hold up the worker's other blocking work.
PULSE_CALL_TIMEOUT_S = 10.0
PULSE_THREADS = 8
SINK_RATE_HZ = 48_000  # Chromium renders at 48 kHz: a sink at that rate spares one resampling
SINK_PREFIX = "couchpotato"
STREAM_PIN_INTERVAL_S = 0.5  # how often the session checks its Chromium plays into its own sink

# Processes
CHROMIUM_TERM_GRACE_S = 3.0  # SIGTERM to the group, then SIGKILL
RECORDER_START_TIMEOUT_S = 10.0  # FFmpeg must deliver its first PCM from the monitor within this
VIDEO_FRAME_RATE = 15
VIDEO_STOP_GRACE_S = 10.0  # SIGINT lets FFmpeg finish the MP4, then SIGKILL
REAP_TIMEOUT_S = 3.0

# yt-dlp resolution of pages
YTDLP_TIMEOUT_S = 45.0
YTDLP_SOCKET_TIMEOUT_S = 15

# A broken capture that is not a dead process (devtools.py; Capture.fault): a page that has rendered
# no frame this long after Chromium started (normally under 2 s here, 3-5 s with three sessions on
# 2 busy cores), or a media element that plays audibly this long while the sink has stayed silent
# since the start. Chromium's DevTools pipe is asked every PAGE_POLL_S, each answer given
# PAGE_STATE_TIMEOUT_S (a renderer that renders nothing never answers).
FIRST_FRAME_TIMEOUT_S = 15.0
SILENT_SINK_S = 10.0
PAGE_POLL_S = 1.0
PAGE_STATE_TIMEOUT_S = 2.0
BROKEN_PAGE_RESTARTS = 2  # without HotPotato (the CLI): new Chromiums tried in the same session
