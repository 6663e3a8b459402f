"""Tunables of supervision and of the swap, with their units in their names."""

from __future__ import annotations

# --- supervision -------------------------------------------------------------------------------
SUPERVISE_INTERVAL_S = 0.25  # the capture job feeds the supervisor a probe this often
DETECTION_S = 3.0  # no audio for this long (past the source's own burst gaps) is a broken capture
DEAD_CONFIRM_S = 0.5  # a process seen dead this long is dead (not a probe racing a restart)
STARTUP_S = 20.0  # a capture that has given no audio this long after it started is broken
BURST_FACTOR = 1.5  # a source that delivers in bursts (HLS segments) may pause 1.5x its longest gap
MAX_LEARNED_GAP_S = 10.0  # the longest healthy gap the supervisor will learn (a stall is not "normal")
LEARN_GAPS = 3  # gaps between arrivals seen before the source's rhythm is trusted…
INITIAL_STALL_S = 10.0  # …until then a stall is this long at least (an HLS source's first segment gap)
ERROR_STALL_S = 1.5  # FFmpeg error lines and no audio for this long: broken sooner than DETECTION_S
MIN_REALTIME_RATIO = 0.5  # a live source delivering slower than this (over RATE_WINDOW_S) is broken
RATE_WINDOW_S = 10.0
SILENT_DBFS = -60.0  # a second below this is silent (a quiet page, not a broken capture)
HEALTH_PUBLISH_INTERVAL_S = 1.0  # the owner writes its health record this often

# --- the swap ----------------------------------------------------------------------------------
SWAP_START_TIMEOUT_S = 45.0  # from swap_started to the new instance's alignment (Chromium start included)
CUTOVER_TIMEOUT_S = 20.0  # from alignment to a low-energy cut-over point
COMMIT_TIMEOUT_S = 10.0  # from the cut to the new instance taking ownership
REQUEST_TTL_S = 30.0  # a request no capture instance picked up is stale after this
OVERLAP_S = 3.0  # audio both instances capture before the new one is aligned (at least)
MAX_BUFFER_S = 90.0  # the new instance buffers at most this much audio waiting for the cut
REFERENCE_MAX_S = 60.0  # the old instance publishes at most this much of its audio for alignment
REFERENCE_BATCH_S = 0.25  # reference audio is appended in batches of about this length
CUT_GUARD_S = 3.5  # the cut falls at least this far after the first audio the new instance holds: the
# first segment after the cut needs that audio as lead-in context and VAD warm-up (Segmenter.prime)
PREFER_SEGMENTER_CUT_S = 4.0  # a segmenter cut is awaited this long before any quiet point will do
QUIET_MS = 300.0  # a quiet point: this much audio below the quiet threshold
QUIET_WINDOW_MS = 32.0  # level windows of the quiet tracker
QUIET_ABOVE_FLOOR_DB = 10.0  # quiet = at most this far above the recent noise floor…
QUIET_MIN_DBFS = -60.0  # …or below this, whichever is higher
QUIET_HISTORY_S = 10.0
FAILOVER_ATTEMPTS = 3  # swaps tried for a dead instance before the session ends with its error
FAILOVER_RETRY_S = 2.0
HISTORY_KEPT = 20  # past swaps kept in the swap record

# --- alignment ---------------------------------------------------------------------------------
XCORR_SEARCH_S = 4.0  # cross-correlation searches the wall-clock prior ± this…
FIRST_SEARCH_S = 1.0  # …after trying ± this first (it needs less of the old instance's audio)
SKIP_START_S = 1.0  # the new instance's first second is no probe (a player starting: measured NCC ~0.45)
VERIFY_SEARCH_MS = 60.0  # timestamp alignment is checked by cross-correlation within ± this
PROBE_S = 2.0  # length of each probe window of the new instance's audio
PROBES = 3  # probe windows tried; at least two must agree
AGREE_MS = 2.0  # probes agree when their offsets differ by at most this
MIN_NCC = 0.6  # peak normalised cross-correlation below this is not a match
MAX_SIDE_PEAK_RATIO = 0.85  # a second peak this close to the first (outside ±SIDE_PEAK_MS) is ambiguous
SIDE_PEAK_MS = 20.0
MIN_PROBE_DBFS = -50.0  # a probe quieter than this cannot be aligned (silence matches anything)
TIMESTAMP_TOLERANCE_MS = 5.0  # timestamps and audio disagreeing by more than this: not trusted
HLS_BACKFILL_MARGIN_S = 4.0  # HLS backfill starts this much before the estimated missing audio
