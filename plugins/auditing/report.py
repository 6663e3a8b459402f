"""The run's findings as JSON (an array of finding objects), CSV and a self-contained HTML report."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .constants import SEVERITIES
from .records import Finding

CSV_COLUMNS = (
    "check_id", "status", "severity", "provider", "account", "region", "resource_id", "resource_type", "message",
    "title", "remediation", "remediation_url", "first_seen", "last_seen", "open_days", "new", "owner",
    "muted_reason", "muted_by", "tags",
)  # fmt: skip
FORMATS = ("json", "csv", "html")
_ORDER = {"ERROR": 0, "FAIL": 1, "MUTED": 2, "PASS": 3}


def open_days(f: Finding) -> int:
    """Days between first and last seen (how long a failure has been open)."""
    try:
        first = dt.datetime.fromisoformat(f.first_seen)
        last = dt.datetime.fromisoformat(f.last_seen)
    except ValueError:
        return 0
    return max(0, (last - first).days)


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(findings, key=lambda f: (_ORDER[f.status], rank[f.severity], f.check_id, f.region, f.resource_id))


def to_json(findings: Sequence[Finding]) -> bytes:
    return json.dumps([f.to_dict() for f in ordered(findings)], indent=1).encode()


def to_csv(findings: Sequence[Finding]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for f in ordered(findings):
        row: dict[str, Any] = f.to_dict()
        row["open_days"] = open_days(f)
        row["tags"] = ";".join(f"{k}={v}" for k, v in sorted(f.tags.items()))
        w.writerow(row)
    return buf.getvalue().encode()


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;font-size:13px;vertical-align:top}
.FAIL{color:#b00020;font-weight:bold}.ERROR{color:#8a4b00;font-weight:bold}.MUTED{color:#666}.PASS{color:#1b5e20}
.new{background:#fff3cd;font-size:11px;padding:1px 4px;border-radius:3px}"""


def to_html(findings: Sequence[Finding], summary: dict[str, Any]) -> bytes:
    e = html.escape
    counts = Counter(f.status for f in findings)
    sev = Counter(f.severity for f in findings if f.status == "FAIL")
    head = " · ".join(f"{s} {counts.get(s, 0)}" for s in ("FAIL", "ERROR", "MUTED", "PASS"))
    by_sev = " · ".join(f"{s} {sev[s]}" for s in reversed(SEVERITIES) if sev.get(s))
    rows = []
    for f in ordered(findings):
        badge = ' <span class="new">new</span>' if f.new else ""
        muted = f"<br><i>muted by {e(f.muted_by)}: {e(f.muted_reason)}</i>" if f.status == "MUTED" else ""
        link = f' <a href="{e(f.remediation_url)}">docs</a>' if f.remediation_url else ""
        rows.append(
            f'<tr><td class="{f.status}">{f.status}{badge}</td><td>{e(f.severity)}</td><td>{e(f.check_id)}</td>'
            f"<td>{e(f.account)}<br>{e(f.region)}</td><td>{e(f.resource_id)}</td><td>{e(f.message)}{muted}</td>"
            f"<td>{e(f.remediation)}{link}</td><td>{e(f.first_seen)}</td><td>{open_days(f)}</td></tr>"
        )
    fixed = "".join(
        f"<li>{e(x['check_id'])}: {e(x['resource_id'])} ({e(x['region'])}), open since {e(x['first_seen'])}</li>"
        for x in summary.get("fixed_findings", [])
    )
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Audit report</title><style>{_STYLE}</style>
</head><body><h1>Audit report</h1>
<p>{e(", ".join(summary.get("providers", [])))} · accounts {e(", ".join(summary.get("accounts", [])))} ·
{e(str(summary.get("finished", "")))}</p>
<p><b>{head}</b></p><p>new failures: {summary.get("new", 0)} · fixed: {summary.get("fixed", 0)}
{" · failing by severity: " + e(by_sev) if by_sev else ""}</p>
{"<h2>Fixed since the last run</h2><ul>" + fixed + "</ul>" if fixed else ""}
<table><thead><tr><th>status</th><th>severity</th><th>check</th><th>account / region</th><th>resource</th>
<th>message</th><th>remediation</th><th>first seen</th><th>open (days)</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
    return doc.encode()


def render(fmt: str, findings: Sequence[Finding], summary: dict[str, Any]) -> bytes:
    if fmt == "json":
        return to_json(findings)
    if fmt == "csv":
        return to_csv(findings)
    if fmt == "html":
        return to_html(findings, summary)
    raise ValueError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")


__all__ = ["CSV_COLUMNS", "FORMATS", "open_days", "ordered", "render", "to_csv", "to_html", "to_json"]
