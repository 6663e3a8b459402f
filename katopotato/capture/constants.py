"""Tunables of the capture runtime, units in the names."""

PROGRESS_INTERVAL_S = 2.0
HEALTH_TTL_S = 3600.0
ACCEPT_WAIT_S = 10.0  # a new instance waits this long for the old one to record the swap it enqueued
TIMESTAMP_WAIT_S = 5.0  # for FFmpeg to print the first sample's stream time
WALLCLOCK_ERROR_MS = 1000.0  # what placing a page by wall clock alone may be off by (0.73 s seen under load)
RESUME_SEEK_MARGIN_S = 0.5  # a recorded source is re-read from this much before the cut
SEEK_AHEAD_S = 0.5  # a recorded source's new instance starts this far ahead of the old one
RECENT_S = 8.0  # the old instance keeps this much of its audio, published first when a swap starts
START_GRACE_S = 5.0  # the old instance waits this much past the new one's own deadline
VERIFY_WAIT_S = 8.0  # timestamps are checked by the old instance's audio if it overlaps this soon after ours
