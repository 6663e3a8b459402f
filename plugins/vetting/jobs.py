"""The ``vetting`` plugin: its settings and jobs.

- ``vetting.run`` (daily at 06:00 by default, on the configured sources): read the contributions,
  compile the watchlists, split the file into chunks of ``chunk_rows`` rows, fan them out as
  ``vetting.chunk`` child jobs across the workers, collate one flagged CSV and JSON (with reasons
  and scores) into the blob store under ``vetting/runs/<job id>/``, and send the summary by e-mail.
- ``vetting.chunk``: vet one chunk (CPU work in a process pool).
- ``vetting.decide``: record a reviewer's decision; a ``cleared`` (donor, subject) pair is not
  flagged again. ``vetting.decisions`` lists them.

Intermediate blobs (chunks, chunk results, the compiled watchlist) are deleted once the run has
stored its outputs; a run that is delivered again after that returns the stored summary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from katopotato.plugin import PRIORITY_BATCH, Abort, BlobStore, JobContext, NoParams, Plugin

from . import constants as c
from .contributions import FileFormat, detect_format, split_chunks
from .decisions import STATUSES, load_decisions, make_decision, save_decision
from .engine import RunReport, build_report, compile_watchlist_part, join_compiled, run_cpu, vet_chunk
from .errors import DecisionError, FormatError, MailError, SourceError
from .mailer import MailOptions, send_summary
from .options import VetOptions
from .sources import read_source
from .watchlists import WatchlistSpec, split_watchlist

MAIL_ATTACHMENT_MAX_BYTES = 5_000_000
SCOPE_REVIEW = "vetting:review"


class WatchlistParams(BaseModel):
    """A watchlist with its options (a plain string is just its source)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="path, http(s) URL, s3://bucket/key or blob:key")
    name: str = Field(default="", description="the list's name in flags (default: the file's stem)")
    format: Literal["auto", "csv", "json"] = "auto"
    type: Literal["person", "organization", "keyword"] = Field(
        default="person", description="the type of entries that do not say"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="field → column header")

    def spec(self) -> WatchlistSpec:
        return WatchlistSpec(self.source, self.name, self.format, self.type, tuple(sorted(self.columns.items())))


class VettingSettings(BaseModel):
    """Settings of the ``vetting`` plugin (``--setting vetting.KEY=VALUE``).

    Attributes:
        contributions, format, columns, watchlists: what the scheduled daily run vets.
        contribution_limit_usd, itemization_threshold_usd: FEC limits.
        match_threshold, org_threshold, name_floor: matching thresholds (0–1).
        candidate_committee_ids: recipients that are candidate committees (empty: all are).
        disabled_rules: rules not applied.
        chunk_rows: contributions per child job.
        cpu_processes: processes for the CPU work per worker (None: one per core; 0: a thread).
        mail_to …: the summary e-mail (no recipients: no e-mail).
        keep_intermediate: keep chunks and chunk results in the blob store (debugging).
    """

    model_config = ConfigDict(extra="forbid")

    contributions: str = ""
    format: Literal["auto", "fec", "csv"] = "auto"
    columns: dict[str, str] = Field(default_factory=dict)
    watchlists: list[str | WatchlistParams] = Field(default_factory=list)
    contribution_limit_usd: float = Field(default=c.CONTRIBUTION_LIMIT_USD, gt=0)
    itemization_threshold_usd: float = Field(default=c.ITEMIZATION_THRESHOLD_USD, ge=0)
    match_threshold: float = Field(default=c.MATCH_THRESHOLD, ge=0, le=1)
    org_threshold: float = Field(default=c.ORG_THRESHOLD, ge=0, le=1)
    name_floor: float = Field(default=c.NAME_FLOOR, ge=0, le=1)
    candidate_committee_ids: list[str] = Field(default_factory=list)
    disabled_rules: list[str] = Field(default_factory=list)
    chunk_rows: int = Field(default=c.CHUNK_ROWS, ge=100)
    cpu_processes: int | None = Field(default=None, ge=0)
    mail_to: list[str] = Field(default_factory=list)
    mail_from: str = "couchpotato-vetting@localhost"
    mail_transport: Literal["smtp", "ses"] = "smtp"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    ses_region: str = ""
    keep_intermediate: bool = False

    def options(self) -> dict[str, Any]:
        return {
            "contribution_limit_usd": self.contribution_limit_usd,
            "itemization_threshold_usd": self.itemization_threshold_usd,
            "match_threshold": self.match_threshold,
            "org_threshold": self.org_threshold,
            "name_floor": self.name_floor,
            "candidate_committee_ids": self.candidate_committee_ids,
            "disabled_rules": self.disabled_rules,
        }

    def mail(self) -> MailOptions:
        return MailOptions(
            recipients=tuple(self.mail_to), sender=self.mail_from, transport=self.mail_transport,
            smtp_host=self.smtp_host, smtp_port=self.smtp_port, smtp_username=self.smtp_username,
            smtp_password=self.smtp_password, smtp_security=self.smtp_security, ses_region=self.ses_region,
        )  # fmt: skip


plugin = Plugin(
    "vetting",
    "1.0",
    description="Every contribution checked against watchlists and FEC rules; a short, explained list.",
    settings=VettingSettings,
    scopes={SCOPE_REVIEW: "see the review queue of flagged contributions and record clear/confirm decisions"},
)


class RunParams(BaseModel):
    """Parameters of ``vetting.run``; what is not given comes from the plugin's settings."""

    model_config = ConfigDict(extra="forbid")

    contributions: str = Field(default="", description="path, http(s) URL, s3://bucket/key or blob:key")
    format: Literal["auto", "fec", "csv"] | None = Field(
        default=None, description="FEC itcont.txt or CSV (default: auto)"
    )
    columns: dict[str, str] = Field(default_factory=dict, description="CSV field → column header")
    delimiter: str | None = Field(
        default=None, min_length=1, max_length=1, description="CSV delimiter (default: guessed)"
    )
    watchlists: list[str | WatchlistParams] = Field(default_factory=list, description="watchlist sources")
    options: dict[str, Any] = Field(default_factory=dict, description="limits and thresholds for this run")
    chunk_rows: int | None = Field(default=None, ge=100, description="contributions per child job")
    notify: bool = Field(default=True, description="send the summary e-mail")
    scheduled: bool = Field(default=False, description="a scheduled run: without a configured source it does nothing")


class ChunkParams(BaseModel):
    """One chunk of a run (enqueued by ``vetting.run``)."""

    model_config = ConfigDict(extra="forbid")

    run: str
    index: int = Field(ge=0)
    chunk: str
    output: str
    start_line: int = Field(ge=1)
    rows: int = Field(ge=0)
    format: dict[str, Any]
    source: str
    watchlist: str
    digest: str
    options: dict[str, Any]


def _settings(ctx: JobContext) -> VettingSettings:
    s = ctx.settings
    return s if isinstance(s, VettingSettings) else VettingSettings()


def _specs(items: list[str | WatchlistParams]) -> list[WatchlistSpec]:
    return [WatchlistSpec(w) if isinstance(w, str) else w.spec() for w in items]


def _retryable(source: str) -> bool:
    """A source over the network may come back; a missing local file or blob will not."""
    return source.startswith(("http://", "https://", "s3://"))


async def _read(source: str, blobs: BlobStore) -> bytes:
    try:
        return await read_source(source, blobs=blobs)
    except SourceError as e:
        if _retryable(source):
            raise
        raise Abort(str(e)) from e


@plugin.job("run", priority=PRIORITY_BATCH, max_tries=2)
async def run(ctx: JobContext, p: RunParams) -> dict[str, Any]:
    """Vet every contribution against the watchlists and the FEC rules; flagged CSV + JSON + e-mail."""
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def lap(phase: str) -> None:
        timings[phase] = round(time.monotonic() - t0 - sum(timings.values()), 3)

    settings = _settings(ctx)
    source = p.contributions or settings.contributions
    if not source:
        if p.scheduled:
            ctx.log.warning("scheduled vetting run skipped: no contributions source (set vetting.contributions)")
            return {"skipped": "no contributions source configured (setting vetting.contributions)"}
        raise Abort("no contributions source: pass contributions or set vetting.contributions")
    specs = _specs(p.watchlists or settings.watchlists)
    try:
        options = VetOptions.coerce({**settings.options(), **p.options})
    except FormatError as e:
        raise Abort(str(e)) from e
    prefix = f"{c.RUN_BLOB_PREFIX}{ctx.job.id}/"
    summary_key = f"{prefix}summary.json"
    if await ctx.blobs.exists(summary_key):  # delivered again after it finished its work
        stored: dict[str, Any] = json.loads(await ctx.blobs.get(summary_key))
        return stored

    await ctx.progress(0, None, f"reading {source}")
    data = await _read(source, ctx.blobs)
    try:
        fmt = detect_format(
            data, kind=p.format or settings.format, columns=p.columns or settings.columns, delimiter=p.delimiter
        )
        chunks = split_chunks(data, fmt, p.chunk_rows or settings.chunk_rows)
    except FormatError as e:
        raise Abort(f"{source}: {e}") from e
    total_rows = sum(ch.rows for ch in chunks)

    await ctx.progress(0, total_rows, f"loading {len(specs)} watchlist(s)")
    pieces = []
    for spec in specs:
        raw = await _read(spec.source, ctx.blobs)
        pieces += [(piece, spec, offset) for piece, offset in split_watchlist(raw, spec, os.cpu_count() or 1)]
    # the watchlists are normalised in the pool while the chunks are being stored
    compiling = asyncio.gather(*(run_cpu(settings.cpu_processes, compile_watchlist_part, *piece) for piece in pieces))
    chunk_keys = []
    for i, ch in enumerate(chunks):
        chunk_keys.append(f"{prefix}chunks/{i:05d}.dat")
        await ctx.blobs.put(chunk_keys[-1], data[ch.start : ch.end])
    del data
    try:
        compiled_parts = await compiling
    except FormatError as e:
        raise Abort(str(e)) from e
    compiled = join_compiled([part[0] for part in compiled_parts])
    wl_malformed = [m for part in compiled_parts for m in part[1]]
    per_list: Counter[str] = Counter()
    for part in compiled_parts:
        per_list.update(part[2])
    watchlist_key = f"{prefix}watchlist.json"
    await ctx.blobs.put(watchlist_key, compiled)
    digest = hashlib.sha256(compiled).hexdigest()
    del compiled, compiled_parts
    children = [
        ChunkParams(
            run=ctx.job.id, index=i, chunk=chunk_keys[i], output=f"{prefix}results/{i:05d}.json", start_line=ch.line,
            rows=ch.rows, format=fmt.to_dict(), source=source, watchlist=watchlist_key, digest=digest,
            options=options.to_dict(),
        )
        for i, ch in enumerate(chunks)
    ]  # fmt: skip
    lap("prepare")
    jobs = [await ctx.enqueue("chunk", child) for child in children]
    await ctx.progress(0, total_rows, f"vetting {total_rows:,} contributions in {len(jobs)} chunk(s)")
    done_rows = 0
    for job, child in zip(jobs, children, strict=True):
        [finished] = await ctx.wait([job])
        if finished.status.value != "succeeded":
            what = f"chunk {child.index} (job {finished.id}) {finished.status.value}"
            raise Abort(f"{what}: {finished.error}" if finished.error else what)
        done_rows += child.rows
        await ctx.progress(done_rows, total_rows, f"vetted {done_rows:,} of {total_rows:,} contributions")

    outputs = [await ctx.blobs.get(child.output) for child in children]
    decisions = await load_decisions(ctx.blobs)
    lap("vet")
    await ctx.progress(done_rows, total_rows, "collating")
    keys = {"csv": f"{prefix}flagged.csv", "json": f"{prefix}flagged.json", "malformed": f"{prefix}malformed.csv"}
    base: dict[str, Any] = {
        "run": ctx.job.id,
        "source": source,
        "chunks": len(chunks),
        "watchlists": sorted(per_list),
        "watchlist_entries": sum(per_list.values()),
        "options": options.to_dict(),
        "outputs": keys,
    }
    done: RunReport = await run_cpu(
        settings.cpu_processes, build_report, outputs, decisions, options.to_dict(), base, wl_malformed
    )
    del outputs
    summary = done.summary
    csv_bytes = done.csv
    await ctx.blobs.put(keys["csv"], csv_bytes)
    await ctx.blobs.put(keys["json"], done.json)
    await ctx.blobs.put(keys["malformed"], done.malformed_csv)
    subject, body = done.subject, done.body
    mail = settings.mail()
    summary["mailed_to"] = []
    if p.notify and mail.recipients:
        attachments = [("flagged.csv", csv_bytes, "text/csv")] if len(csv_bytes) <= MAIL_ATTACHMENT_MAX_BYTES else []
        try:
            await asyncio.to_thread(send_summary, mail, subject, body, attachments)
            summary["mailed_to"] = list(mail.recipients)
        except MailError as e:
            if not ctx.last_try:
                raise
            summary["mail_error"] = str(e)
    await ctx.notifier.notify(
        f"{summary['flags']} flag(s) in {summary['contributions']:,} contributions; "
        f"{summary['malformed']} malformed row(s) skipped",
        subject=subject,
        level="warning" if summary["flags"] or summary["malformed"] else "info",
        run=ctx.job.id,
    )
    lap("collate")
    summary["timings_s"] = timings
    summary["elapsed_s"] = round(time.monotonic() - t0, 3)
    await ctx.blobs.put(summary_key, json.dumps(summary).encode())
    if not settings.keep_intermediate:
        for key in [watchlist_key, *(ch.chunk for ch in children), *(ch.output for ch in children)]:
            await ctx.blobs.delete(key)
    await ctx.progress(total_rows, total_rows, f"{summary['flags']} flag(s)")
    return summary


plugin.schedule("daily", c.SCHEDULE_CRON, "run", {"scheduled": True})


async def _local_copy(blobs: BlobStore, key: str, digest: str) -> str:
    """A local file with the compiled watchlist, for the pool processes (one per content digest)."""
    path = Path(tempfile.gettempdir()) / "couchpotato-vetting" / f"{digest}.json"
    if not path.exists():
        data = await blobs.get(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            # keep the few most recent compiled lists (the daily run's lists rarely change)
            old = sorted(path.parent.glob("*.json"), key=lambda q: q.stat().st_mtime, reverse=True)
            for stale in old[c.WATCHLIST_CACHE_ENTRIES * 2 :]:
                stale.unlink(missing_ok=True)

        await asyncio.to_thread(write)
    return str(path)


@plugin.job("chunk", priority=PRIORITY_BATCH, max_tries=3)
async def chunk(ctx: JobContext, p: ChunkParams) -> dict[str, Any]:
    """Vet one chunk of a run's contributions."""
    settings = _settings(ctx)
    data = await ctx.blobs.get(p.chunk)
    path = await _local_copy(ctx.blobs, p.watchlist, p.digest)
    FileFormat.from_dict(p.format)  # fail early on a bad format record
    out = await run_cpu(
        settings.cpu_processes, vet_chunk, data, p.format, p.start_line, p.source, path, p.digest, p.options
    )
    await ctx.blobs.put(p.output, out)
    await ctx.progress(p.rows, p.rows, f"chunk {p.index}: {p.rows:,} rows")
    return {"output": p.output, "rows": p.rows, "bytes": len(out)}


class DecideParams(BaseModel):
    """A reviewer's decision on one flag's (donor, subject) pair."""

    model_config = ConfigDict(extra="forbid")

    donor_key: str = Field(min_length=1, description="the flag's donor_key")
    subject_key: str = Field(min_length=1, description="the flag's subject_key (list:entry, or the rule)")
    reason: str = Field(min_length=1)
    status: Literal["cleared", "confirmed"] = "cleared"
    reviewer: str = ""


@plugin.job("decide", priority=PRIORITY_BATCH)
async def decide(ctx: JobContext, p: DecideParams) -> dict[str, Any]:
    """Record a reviewer's decision: a cleared flag is not raised again for that donor and entry."""
    try:
        decision = make_decision(p.donor_key, p.subject_key, p.status, p.reason, p.reviewer)
    except DecisionError as e:
        raise Abort(str(e)) from e
    key = await save_decision(ctx.blobs, decision)
    return {**decision.to_dict(), "blob": key}


@plugin.job("decisions", priority=PRIORITY_BATCH)
async def decisions(ctx: JobContext, p: NoParams) -> list[dict[str, Any]]:
    """Every recorded reviewer decision."""
    return [d.to_dict() for d in await load_decisions(ctx.blobs)]


__all__ = [
    "SCOPE_REVIEW",
    "STATUSES",
    "ChunkParams",
    "DecideParams",
    "RunParams",
    "VettingSettings",
    "WatchlistParams",
    "plugin",
]
