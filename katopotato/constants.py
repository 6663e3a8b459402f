"""Tunables of the job scheduler, its brokers and the plugin host, with their units in their names."""

from __future__ import annotations

# Priorities: lower runs first. Live transcription is ahead of everything else.
PRIORITY_LIVE = 0
PRIORITY_INTERACTIVE = 10
PRIORITY_NORMAL = 100
PRIORITY_BATCH = 200
PRIORITY_MAX = 1_000

# Delivery and retries
DEFAULT_MAX_TRIES = 3  # attempts per job, the first included; a kind may declare its own
VISIBILITY_TIMEOUT_S = 30.0  # a lease not renewed for this long is reclaimed and retried elsewhere
HEARTBEAT_INTERVAL_S = 5.0  # a worker renews its leases this often (well under the visibility timeout)
RETRY_BACKOFF_BASE_S = 1.0  # first retry after this; doubles per try
RETRY_BACKOFF_MAX_S = 300.0
RECLAIM_BATCH = 100  # expired leases / due delayed jobs handled per claim call

# Retention
RESULT_TTL_S = 24 * 3600.0  # a job's result is kept this long after it finished
JOB_TTL_S = 7 * 24 * 3600.0  # a succeeded or cancelled job's record is kept this long
IDEMPOTENCY_TTL_S = 24 * 3600.0  # an idempotency key maps to its job this long
JOB_EVENTS_MAXLEN = 1_000  # progress events kept per job

# Workers
DEFAULT_CONCURRENCY = 4  # jobs one worker process runs at once
IDLE_WAIT_MAX_S = 1.0  # an idle worker re-checks the queues at least this often
DRAIN_GRACE_S = 30.0  # on SIGTERM, in-flight jobs get this long to finish before they are handed back
HANDOVER_GRACE_S = 90.0  # on SIGTERM, a capture session gets this long to swap to another worker
WORKER_GROUPS = ("capture", "asr", "plugins")  # names `katopotato worker --kinds` accepts besides kinds

# Cron
CRON_CHECK_INTERVAL_S = 1.0  # a scheduler looks for due ticks this often
CRON_MISFIRE_GRACE_S = 60.0  # a tick missed by longer than this (scheduler down) is skipped

# Redis backend
REDIS_DEFAULT_PREFIX = "kp:"
REDIS_SCORE_PRIORITY_SHIFT = 2**32  # ready-queue score = priority * shift + enqueue counter

# Transcription
LIVE_ASR_MAX_TRIES = 3
CAPTURE_MAX_TRIES = 5  # a capture session survives this many lost workers
SESSION_CAS_ATTEMPTS = 50  # compare-and-set retries on a session's resequencer state
SESSION_JANITOR_INTERVAL_S = 2.0  # the capture job gaps overdue seqs this often
SESSION_FINISH_TIMEOUT_S = 300.0  # after the source ends, wait this long for ASR before gapping
AUDIO_BLOB_PREFIX = "audio/"
TRANSCRIPT_BLOB_PREFIX = "transcripts/"
