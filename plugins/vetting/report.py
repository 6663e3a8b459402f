"""The run's outputs: the flagged CSV (one row per flag), its JSON twin, the malformed-rows CSV and the
summary people read (e-mail body, job result)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .constants import FLAGS_IN_EMAIL
from .records import FLAG_COLUMNS, Flag, MalformedRow
from .rules import fmt_date, usd


def flags_csv(flags: Sequence[Flag]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(FLAG_COLUMNS)
    for f in flags:
        d = f.to_dict()
        d["score"] = f"{f.score:.4f}"
        d["amount_usd"] = f"{f.amount_usd:.2f}"
        d["date"] = fmt_date(f.date)
        w.writerow([d[k] for k in FLAG_COLUMNS])
    return buf.getvalue().encode()


def flags_json(flags: Sequence[Flag], summary: Mapping[str, Any]) -> bytes:
    doc = {"v": 1, "summary": summary, "flags": [f.to_dict() for f in flags]}
    return json.dumps(doc, separators=(",", ":")).encode()


def malformed_csv(rows: Sequence[MalformedRow]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(("source", "line", "error"))
    for m in rows:
        w.writerow((m.source, m.line, m.error))
    return buf.getvalue().encode()


def counts(flags: Sequence[Flag]) -> tuple[dict[str, int], dict[str, int]]:
    """Flags per rule and per watchlist."""
    return dict(Counter(f.rule for f in flags)), dict(Counter(f.list for f in flags if f.list))


def summary_text(
    summary: Mapping[str, Any], flags: Sequence[Flag], malformed: Sequence[MalformedRow]
) -> tuple[str, str]:
    """(subject, body) of the summary e-mail."""
    n = len(flags)
    subject = f"Vetting: {n} flag{'s' if n != 1 else ''} in {summary['contributions']:,} contributions"
    lines = [
        f"Run {summary['run']} vetted {summary['contributions']:,} contributions from {summary['source']}",
        f"against {summary['watchlist_entries']:,} watchlist entries ({', '.join(summary['watchlists']) or 'none'}).",
        "",
        f"Flags: {n}" + (f" ({summary['cleared']} more cleared by reviewers)" if summary.get("cleared") else ""),
    ]
    lines += [f"  {rule}: {k}" for rule, k in sorted(summary["by_rule"].items())]
    if summary.get("by_list"):
        lines += ["By list:"] + [f"  {name}: {k}" for name, k in sorted(summary["by_list"].items())]
    if malformed:
        lines += ["", f"Malformed rows skipped: {len(malformed)}"]
        lines += [f"  {m}" for m in malformed[:10]]
    if flags:
        lines += ["", f"Top {min(n, FLAGS_IN_EMAIL)}:"]
        for f in flags[:FLAGS_IN_EMAIL]:
            lines.append(
                f"  [{f.rule}] {f.contribution_id} {f.donor_name} {usd(f.amount_usd)} score {f.score:.2f}: {f.reason}"
            )
    outputs = summary.get("outputs", {})
    if outputs:
        lines += ["", "Full results in the blob store: " + ", ".join(str(v) for v in outputs.values())]
    return subject, "\n".join(lines) + "\n"


__all__ = ["counts", "flags_csv", "flags_json", "malformed_csv", "summary_text"]
