"""Tunables of the auditing plugin, with their units in their names."""

from __future__ import annotations

SCHEDULE_CRON = "0 * * * *"  # hourly
STATE_BLOB_PREFIX = "auditing/state/"  # one blob per (provider, account): what was seen, since when
MUTE_BLOB_PREFIX = "auditing/mutes/"  # one blob per mute made through the API (the console), read by every run
RUN_BLOB_PREFIX = "auditing/runs/"  # one folder per run: findings.json|csv|html, summary.json
CHECK_ENTRY_POINT_GROUP = "couchpotato.auditing.checks"  # third-party checks register here

SEVERITIES = ("informational", "low", "medium", "high", "critical")
SEVERITY_ID = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}  # OCSF severity_id
STATUSES = ("FAIL", "PASS", "MUTED", "ERROR")
PROVIDERS = ("aws", "google", "github", "slack")

UNUSED_CREDENTIAL_DAYS = 45
GOOGLE_INACTIVE_DAYS = 45
HIGH_RISK_PORTS = (20, 21, 22, 23, 25, 445, 1433, 1521, 2049, 3306, 3389, 5432, 5439, 5984, 6379, 9200, 11211, 27017)
ALLOWED_PUBLIC_PORTS = (80, 443)

PAGE_SEVERITY = "critical"  # any new failure at or above this pages
PAGE_HIGH_COUNT = 5  # more than this many new high failures in one run pages them
HTTP_TIMEOUT_S = 15.0
OPEN_IN_RESULT = 100  # open failures listed in the job's result (the console shows it); all are in the findings
