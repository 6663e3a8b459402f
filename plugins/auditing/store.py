"""What was seen before: one blob per (provider, account) in the host's blob store
(``auditing/state/<provider>/<account>.json``), read at the start of a run and written at its end.

``reconcile`` gives every finding its ``first_seen`` (when it entered its current state: open — FAIL
or MUTED, so muting does not reset its age —, PASS or ERROR) and ``last_seen`` (this run), marks the
open ones that were not open before as ``new``, and lists those open before and not any more as
``fixed``. A check that ended in ERROR says nothing about its resources: their previous entries are
carried over, neither fixed nor refreshed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from katopotato.plugin import BlobStore

from .constants import STATE_BLOB_PREFIX
from .errors import AuditError
from .records import Finding

STATE_VERSION = 1


def _category(status: str) -> str:
    return "open" if status in ("FAIL", "MUTED") else status


def state_key(provider: str, account: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.@-]+", "_", account) or "_"
    return f"{STATE_BLOB_PREFIX}{provider}/{safe}.json"


@dataclass
class Reconciled:
    """A run's findings set against the previous state.

    Attributes:
        new: failures (FAIL or MUTED) that were not open in the previous run.
        fixed: entries (as stored, with their ``key``) open in the previous run, now passing or gone.
        state: the state to store for the next run, by finding key.
    """

    new: list[Finding] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, dict[str, Any]] = field(default_factory=dict)


def reconcile(previous: dict[str, dict[str, Any]], findings: Iterable[Finding], now: str) -> Reconciled:
    out = Reconciled()
    errored = set()
    seen: set[str] = set()
    for f in findings:
        key = f.key
        seen.add(key)
        if f.status == "ERROR":
            errored.add(f.check_id)
        prev = previous.get(key)
        same = prev is not None and _category(prev["status"]) == _category(f.status)
        f.first_seen = prev["first_seen"] if same and prev is not None else now
        f.last_seen = now
        f.new = f.failing and not same
        if f.new:
            out.new.append(f)
        out.state[key] = {
            "check_id": f.check_id, "status": f.status, "severity": f.severity, "resource_id": f.resource_id,
            "region": f.region, "first_seen": f.first_seen, "last_seen": now,
            "paged": bool(prev and same and prev.get("paged")),
        }  # fmt: skip
    for key, prev in previous.items():
        if key in seen:
            if _category(prev["status"]) == "open" and _category(out.state[key]["status"]) != "open":
                out.fixed.append({**prev, "key": key})
            continue
        if prev["check_id"] in errored:
            out.state[key] = prev  # not known this run
        elif _category(prev["status"]) == "open":
            out.fixed.append({**prev, "key": key})
    return out


async def load_state(blobs: BlobStore, provider: str, account: str) -> dict[str, dict[str, Any]]:
    key = state_key(provider, account)
    if not await blobs.exists(key):
        return {}
    try:
        doc = json.loads(await blobs.get(key))
        entries = doc["findings"]
        if not isinstance(entries, dict):
            raise TypeError("findings is not an object")
    except (ValueError, KeyError, TypeError) as e:
        raise AuditError(f"the stored audit state {key} is unreadable: {e}") from e
    return entries


async def save_state(blobs: BlobStore, provider: str, account: str, state: dict[str, dict[str, Any]]) -> str:
    key = state_key(provider, account)
    doc = {"v": STATE_VERSION, "provider": provider, "account": account, "findings": state}
    return await blobs.put(key, json.dumps(doc, sort_keys=True).encode())


__all__ = ["Reconciled", "load_state", "reconcile", "save_state", "state_key"]
