"""Reviewer decisions, kept in the host's blob store (``vetting/decisions/<hash>.json``, one blob per
(donor, subject) pair, so concurrent reviewers never overwrite each other's decisions and a run
reads them with one listing). A ``cleared`` decision keeps that donor's flags for that watchlist
entry (or FEC rule) out of later runs."""

from __future__ import annotations

import hashlib
import json
import time

from katopotato.plugin import BlobStore

from .constants import DECISION_BLOB_PREFIX
from .errors import DecisionError, FormatError
from .records import Decision

STATUSES = ("cleared", "confirmed")


def decision_blob_key(donor_key: str, subject_key: str) -> str:
    digest = hashlib.sha256(f"{donor_key}\x1f{subject_key}".encode()).hexdigest()[:40]
    return f"{DECISION_BLOB_PREFIX}{digest}.json"


def make_decision(
    donor_key: str, subject_key: str, status: str, reason: str, reviewer: str = "", reviewer_id: str = ""
) -> Decision:
    if not donor_key.strip() or not subject_key.strip():
        raise DecisionError("a decision names a donor_key and a subject_key (both are columns of the flagged CSV)")
    if status not in STATUSES:
        raise DecisionError(f"unknown decision status {status!r}: use {' or '.join(STATUSES)}")
    if not reason.strip():
        raise DecisionError("a decision needs a reason")
    return Decision(
        donor_key.strip(), subject_key.strip(), status, " ".join(reason.split()), reviewer, time.time(), reviewer_id
    )


async def save_decision(blobs: BlobStore, decision: Decision) -> str:
    key = decision_blob_key(decision.donor_key, decision.subject_key)
    await blobs.put(key, json.dumps(decision.to_dict()).encode())
    return key


async def load_decisions(blobs: BlobStore) -> list[Decision]:
    """Every stored decision; an unreadable blob is an error (a cleared flag must not come back silently)."""
    out: list[Decision] = []
    for info in await blobs.list(DECISION_BLOB_PREFIX):
        data = await blobs.get(info.key)
        try:
            out.append(Decision.from_dict(json.loads(data)))
        except (ValueError, FormatError) as e:
            raise FormatError(f"decision blob {info.key} is unreadable: {e}") from e
    return out


__all__ = ["STATUSES", "decision_blob_key", "load_decisions", "make_decision", "save_decision"]
