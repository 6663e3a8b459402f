"""Every name katopotato gives a thing in the broker, in one place.

Keyed state (``kv_get``/``kv_cas``) and streams of a session:

======================================  ==========================================================
``session:<session>``                   the resequencer's state (``transcription.SessionState``)
``transcript:<session>``                stream: transcript events, then the swap events
``capture:<session>``                   the capture state, written by its owner (``CaptureState``)
``health:<session>``                    the capture's last health probe and verdict
``swap:<session>``                      HotPotato's swap record (``hotpotato.swap.swap_key``)
``swapaudio:<session>:<swap>``          stream: a swap's reference audio (``hotpotato.swap``)
``outputs-lease:<session>``             which API process runs the session's sinks
``partials:<session>``                  stream: interim text of the open segment (transient, capped)
``partials-wanted:<session>``           present (with a TTL) while a client follows its partials
======================================  ==========================================================

Idempotency keys of the jobs a session enqueues (a retried enqueue returns the same job):
``session:<session>`` (its capture job), ``asr:<session>:<seq>`` (a segment's ASR job),
``swap:<session>:<swap>`` (the new capture instance of a swap), and ``cron:<schedule>:<tick>`` (the
job a cron tick fires, once across all schedulers). Job records, queues and results
are the broker's own (``katopotato.broker``).
"""

from __future__ import annotations

from hotpotato.swap import reference_stream, swap_key

OUTPUTS_LEASE_PREFIX = "outputs-lease:"


def session_state_key(session_id: str) -> str:
    """The resequencer's state of a session."""
    return f"session:{session_id}"


def transcript_stream(session_id: str) -> str:
    """The broker stream of a session's transcript events (and its swap events)."""
    return f"transcript:{session_id}"


def capture_key(session_id: str) -> str:
    """The capture state of a session, written only by the capture instance that owns it."""
    return f"capture:{session_id}"


def health_key(session_id: str) -> str:
    """The capture's latest health probe and supervisor verdict."""
    return f"health:{session_id}"


def outputs_lease_key(session_id: str) -> str:
    """The lease of the API process that runs the session's sinks."""
    return OUTPUTS_LEASE_PREFIX + session_id


def partials_stream(session_id: str) -> str:
    """The broker stream of a session's interim text (``partial`` events): capped and expiring, never
    copied into the durable log."""
    return f"partials:{session_id}"


def partials_wanted_key(session_id: str) -> str:
    """Present while an SSE client follows the session's partials: the capture instance drafts only
    then (a TTL ends it when the client goes)."""
    return f"partials-wanted:{session_id}"


def session_job_key(session_id: str) -> str:
    """The idempotency key ``start_session`` enqueues a session's capture job under."""
    return f"session:{session_id}"


def asr_job_key(session_id: str, seq: int) -> str:
    """The idempotency key the capture job enqueues a segment's ASR job under."""
    return f"asr:{session_id}:{seq}"


def swap_job_key(session_id: str, swap_id: str) -> str:
    """The idempotency key the old capture instance enqueues the new one of a swap under."""
    return f"swap:{session_id}:{swap_id}"


def cron_job_key(schedule: str, tick: float) -> str:
    """The idempotency key a cron tick's job is enqueued under (one job per tick, however many
    schedulers fire it)."""
    return f"cron:{schedule}:{tick:.0f}"


__all__ = [
    "OUTPUTS_LEASE_PREFIX",
    "asr_job_key",
    "capture_key",
    "cron_job_key",
    "health_key",
    "outputs_lease_key",
    "partials_stream",
    "partials_wanted_key",
    "reference_stream",
    "session_job_key",
    "session_state_key",
    "swap_job_key",
    "swap_key",
    "transcript_stream",
]
