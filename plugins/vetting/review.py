"""The review queue: a run's flags grouped by the (donor, subject) pair a decision names, each with
why it matched and the decision recorded on it, if any.

A run's outputs are where ``vetting.run`` left them (``vetting/runs/<job id>/summary.json`` and
``flagged.json``); the latest run is the one whose summary was stored last. Decisions are the
plugin's own decision blobs (``decisions.py``), so a decision made here is the one the next run
reads (a ``cleared`` pair is not flagged again), and one made with the ``vetting.decide`` job shows
here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from katopotato.plugin import BlobStore

from .constants import RUN_BLOB_PREFIX
from .errors import FormatError
from .records import Decision, Flag

SUMMARY_NAME = "summary.json"
CONTRIBUTION_FIELDS = ("contribution_id", "line", "amount_usd", "date", "committee", "employer", "city", "state",
                       "reason", "score")  # fmt: skip


@dataclass
class QueueItem:
    """One (donor, subject) pair of a run: its flags (one per contribution) and its decision.

    Attributes:
        flags: the pair's flags, highest score first.
        decision: the recorded decision, or None (pending).
    """

    donor_key: str
    subject_key: str
    flags: list[Flag] = field(default_factory=list)
    decision: Decision | None = None

    @property
    def score(self) -> float:
        return max(f.score for f in self.flags)

    def to_dict(self) -> dict[str, Any]:
        top = self.flags[0]
        return {
            "donor_key": self.donor_key,
            "subject_key": self.subject_key,
            "donor_name": top.donor_name,
            "rule": top.rule,
            "list": top.list,
            "matched_name": top.matched_name,
            "score": top.score,
            "reason": top.reason,
            "amount_usd": round(sum(f.amount_usd for f in self.flags), 2),
            "contributions": [{k: getattr(f, k) for k in CONTRIBUTION_FIELDS} for f in self.flags],
            "decision": self.decision.to_dict() if self.decision else None,
        }


async def run_ids(blobs: BlobStore) -> list[tuple[str, float]]:
    """The finished runs (those with a stored summary) and when each was stored, latest first."""
    runs = []
    for info in await blobs.list(RUN_BLOB_PREFIX):
        rest = info.key[len(RUN_BLOB_PREFIX) :]
        run, _, name = rest.partition("/")
        if name == SUMMARY_NAME:
            runs.append((run, info.modified_at))
    return sorted(runs, key=lambda r: (r[1], r[0]), reverse=True)


async def load_run(blobs: BlobStore, run: str) -> tuple[dict[str, Any], list[Flag]]:
    """A finished run's summary and flags; raises FormatError if its outputs are unreadable."""
    prefix = f"{RUN_BLOB_PREFIX}{run}/"
    try:
        summary = json.loads(await blobs.get(f"{prefix}{SUMMARY_NAME}"))
        flagged_key = summary.get("outputs", {}).get("json", f"{prefix}flagged.json")
        doc = json.loads(await blobs.get(flagged_key))
        return summary, [Flag.from_dict(f) for f in doc["flags"]]
    except (ValueError, KeyError, TypeError, AttributeError, FileNotFoundError) as e:
        raise FormatError(f"the outputs of vetting run {run} are unreadable: {e}") from e


def build_queue(flags: Iterable[Flag], decisions: Iterable[Decision]) -> list[QueueItem]:
    """Group flags by (donor_key, subject_key), attach the decision on each pair; highest score first."""
    by_pair = {(d.donor_key, d.subject_key): d for d in decisions}
    items: dict[tuple[str, str], QueueItem] = {}
    for f in flags:
        pair = (f.donor_key, f.subject_key)
        item = items.get(pair)
        if item is None:
            item = items[pair] = QueueItem(f.donor_key, f.subject_key, decision=by_pair.get(pair))
        item.flags.append(f)
    for item in items.values():
        item.flags.sort(key=lambda f: (-f.score, f.line))
    return sorted(items.values(), key=lambda i: (-i.score, i.donor_key, i.subject_key))


def counts(items: Iterable[QueueItem]) -> Mapping[str, int]:
    out = {"pending": 0, "cleared": 0, "confirmed": 0}
    for item in items:
        out["pending" if item.decision is None else item.decision.status] += 1
    return out


__all__ = ["QueueItem", "build_queue", "counts", "load_run", "run_ids"]
