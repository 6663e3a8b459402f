"""Tunables of the transcript sinks, with their units in their names."""

from __future__ import annotations

# Retries (every sink): exponential backoff from BACKOFF_BASE_S, jittered, capped at the sink's
# max_backoff_s; after retry_for_s of failures the sink is reported failing and keeps retrying at
# the cap, so it catches up by itself when the destination comes back.
BACKOFF_BASE_S = 0.5
BACKOFF_JITTER = 0.2  # ± this fraction
DEFAULT_MAX_BACKOFF_S = 60.0
DEFAULT_RETRY_FOR_S = 300.0
SOURCE_RETRY_S = 1.0  # the event source failed (broker down): reopen it from the last id read after this
QUEUE_MAX_EVENTS = 2_000  # events read ahead of a slow sink; the source is paused beyond that

# Google Docs. The API allows 60 write requests per minute per user (a service account, or the
# delegated user): every sink writing as the same principal in this process shares one budget.
DOCS_WRITE_QUOTA_PER_MIN = 60
DOCS_BATCH_INTERVAL_S = 2.0  # at most one batchUpdate per interval per document
DOCS_BUDGET_MARGIN_S = 1.0  # the budget's window is this much longer than Google's minute (clock skew)
DOCS_BUDGET_PRESSURE = 0.5  # past this share of the budget used, each document gets its fair share only
DOCS_BATCH_MAX_EVENTS = 50
DOCS_HTTP_TIMEOUT_S = 30.0
DOCS_CONFLICT_ATTEMPTS = 4  # re-reads after a concurrent edit before the batch is retried later
DOCS_MARKER_PREFIX = "couchpotato"
DOCS_ENDPOINT = "https://docs.googleapis.com/"
DRIVE_ENDPOINT = "https://www.googleapis.com/drive/v3/"
DOCS_SCOPES = ("https://www.googleapis.com/auth/documents", "https://www.googleapis.com/auth/drive.file")
DRIVE_FULL_SCOPE = "https://www.googleapis.com/auth/drive"  # only when a doc is put into a given folder

# Webhooks
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_SIGNATURE_HEADER = "X-CouchPotato-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-CouchPotato-Timestamp"
WEBHOOK_EVENT_ID_HEADER = "X-CouchPotato-Event-Id"
WEBHOOK_SIGNATURE_TOLERANCE_S = 300.0  # receivers refuse older timestamps (replays)
WEBHOOK_MIN_SECRET_CHARS = 16

# Files
FILE_WRITE_INTERVAL_S = 1.0  # the blob store replaces whole objects: rewrite at most this often
FILE_BATCH_MAX_EVENTS = 1_000
FILE_KEY_TEMPLATE = "transcripts/{session_id}/{sink_id}.{ext}"
FILE_STATE_SUFFIX = ".state.json"
