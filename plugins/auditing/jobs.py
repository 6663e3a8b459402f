"""The ``auditing`` plugin: its job ``auditing.run`` (hourly on the configured providers, on demand
through the jobs API and ``katopotato jobs run auditing.run --provider aws [--mutelist FILE]
--output findings.json [--format csv|html]``) and ``auditing.checks`` (what checks exist).

A run: every selected check of the provider, against the account the provider's credentials reach;
failures the mute list matches become MUTED; findings are set against the previous run's state
(first seen, new, fixed); the findings are stored as JSON, CSV or HTML under
``auditing/runs/<job id>/`` with ``summary.json`` and ``metrics.prom``; then Slack, PagerDuty,
the owners' e-mail and the Pushgateway hear about it, and the state is stored for the next run.
Notifications are at least once: a channel that fails fails the try (the state is not stored, so the
retry sees the same new failures); on the last try the failure is recorded in the summary instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from typing import Any

from katopotato.plugin import PRIORITY_BATCH, Abort, JobContext, NoParams, Plugin

from . import constants as c
from .checks import BUILTIN_CHECKS
from .errors import AuditError, CheckRegistryError, MutelistError, NotifyError
from .mutelist import Mutelist
from .mutes import load_mutes
from .notify import (
    build_registry,
    exposition,
    owner_messages,
    push,
    resolve_event,
    send_event,
    send_messages,
    send_slack,
    summary_message,
    to_page,
    trigger_event,
)
from .providers import api_calls, close_api, open_api
from .records import Finding
from .registry import CheckRegistry, load_checks
from .report import open_days, ordered, render
from .runner import error_finding, reason_of, run_checks
from .settings import AuditingSettings, RunParams
from .store import Reconciled, load_state, reconcile, save_state

SCOPE_READ = "auditing:read"
SCOPE_MUTE = "auditing:mute"

plugin = Plugin(
    "auditing",
    "1.0",
    description="Standing checks of cloud and SaaS accounts, with findings, mutes and alerts that escalate.",
    settings=AuditingSettings,
    scopes={
        SCOPE_READ: "see the current audit findings and the mutes",
        SCOPE_MUTE: "mute a finding (with a reason) and unmute it",
    },
)


def _settings(ctx: JobContext) -> AuditingSettings:
    s = ctx.settings
    return s if isinstance(s, AuditingSettings) else AuditingSettings()


class _Audit:
    """One provider's part of a run."""

    def __init__(self, provider: str, account: str, findings: list[Finding], calls: int, checks: int) -> None:
        self.provider, self.account, self.findings, self.calls, self.checks = provider, account, findings, calls, checks
        self.rec = Reconciled()
        self.stateful = account != ""


async def _audit(
    ctx: JobContext, registry: CheckRegistry, provider: str, p: RunParams, settings: AuditingSettings,
    thresholds: dict[str, dict[str, Any]], now: dt.datetime,
) -> _Audit:  # fmt: skip
    checks = registry.select(provider, p.checks, p.skip_checks)
    stamp = now.isoformat(timespec="seconds")
    try:
        api, account = await asyncio.to_thread(
            open_api, provider, settings.provider_options(provider, p.account, p.regions)
        )
    except Exception as e:  # no credentials, no endpoint: every check is an ERROR, with the reason
        reason = f"cannot reach {provider}: {reason_of(e)}"
        return _Audit(provider, "", [error_finding(ch, "unknown", reason, stamp) for ch in checks], 0, len(checks))
    loop = asyncio.get_running_loop()

    def progress(done: int, check_id: str) -> None:
        msg = f"{provider} {account}: {check_id} ({done}/{len(checks)})"
        asyncio.run_coroutine_threadsafe(ctx.progress(done, len(checks), msg), loop)

    try:
        findings = await asyncio.to_thread(run_checks, api, account, checks, thresholds, now, progress)
    finally:
        await asyncio.to_thread(close_api, api)
    return _Audit(provider, account, findings, api_calls(api), len(checks))


@plugin.job("run", priority=PRIORITY_BATCH, max_tries=2, concurrency=1)
async def run(ctx: JobContext, p: RunParams) -> dict[str, Any]:
    """Audit a provider's account: findings (JSON/CSV/HTML), mutes, Slack, PagerDuty, e-mail, metrics."""
    t0 = time.monotonic()
    settings = _settings(ctx)
    providers = [p.provider] if p.provider else list(settings.providers)
    if not providers:
        if p.scheduled:
            ctx.log.warning("scheduled audit skipped: no providers configured (set auditing.providers)")
            return {"skipped": "no providers configured (setting auditing.providers)"}
        raise Abort("no provider: pass --provider aws|google|github|slack or set auditing.providers")
    prefix = f"{c.RUN_BLOB_PREFIX}{ctx.job.id}/"
    summary_key = f"{prefix}summary.json"
    if await ctx.blobs.exists(summary_key):  # delivered again after it finished
        stored: dict[str, Any] = json.loads(await ctx.blobs.get(summary_key))
        return stored
    try:
        registry = load_checks()
        for provider in providers:
            if provider not in registry.providers():
                raise CheckRegistryError(f"unknown provider {provider!r}; known: {', '.join(registry.providers())}")
        thresholds = registry.thresholds({**settings.thresholds, **p.thresholds})
        mute_path = p.mutelist or settings.mutelist
        mutelist = await asyncio.to_thread(Mutelist.load, mute_path) if mute_path else Mutelist()
        api_mutes = await load_mutes(ctx.blobs)  # made through the API (the console)
        mutelist = Mutelist([*mutelist.mutes, *(m.mute for m in api_mutes)], mutelist.source)
    except (CheckRegistryError, MutelistError) as e:
        raise Abort(str(e)) from e

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = now.isoformat(timespec="seconds")
    audits = [await _audit(ctx, registry, provider, p, settings, thresholds, now) for provider in providers]
    findings = [f for a in audits for f in a.findings]
    muted = mutelist.apply(findings, now.date())
    for a in audits:
        previous = await load_state(ctx.blobs, a.provider, a.account) if a.stateful else {}
        a.rec = reconcile(previous, a.findings, stamp)
    new = [f for a in audits for f in a.rec.new]
    fixed = [x for a in audits for x in a.rec.fixed]
    errors = [f for f in findings if f.status == "ERROR"]
    counts = Counter(f.status for f in findings)
    summary: dict[str, Any] = {
        "run": ctx.job.id,
        "providers": providers,
        "accounts": sorted({a.account or "unknown" for a in audits}),
        "finished": stamp,
        "checks": sum(a.checks for a in audits),
        "findings": len(findings),
        "status": {s: counts.get(s, 0) for s in c.STATUSES},
        "failing_by_severity": dict(Counter(f.severity for f in findings if f.status == "FAIL")),
        "new": sum(1 for f in new if f.status == "FAIL"),
        "new_muted": sum(1 for f in new if f.status == "MUTED"),
        "fixed": len(fixed),
        "fixed_findings": fixed,
        "muted": muted,
        "expired_mutes": [m.model_dump(mode="json") for m in mutelist.expired(now.date())],
        "errors": [f"{f.check_id}: {f.message}" for f in errors],
        "open_failures": [_brief(f) for f in ordered([f for f in findings if f.status == "FAIL"])[: c.OPEN_IN_RESULT]],
        "api_calls": sum(a.calls for a in audits),
    }
    keys = {p.format: f"{prefix}findings.{p.format}", "metrics": f"{prefix}metrics.prom"}
    await ctx.blobs.put(keys[p.format], render(p.format, findings, summary))
    reg = build_registry(findings, elapsed_s=time.monotonic() - t0, api_calls=summary["api_calls"])
    await ctx.blobs.put(keys["metrics"], exposition(reg))
    summary["outputs"] = {p.format: keys[p.format]}
    summary["metrics"] = keys["metrics"]
    summary["notified"] = await _notify(ctx, settings, audits, new, errors, reg) if p.notify else {}
    for a in audits:
        if a.stateful:
            await save_state(ctx.blobs, a.provider, a.account, a.rec.state)
    summary["elapsed_s"] = round(time.monotonic() - t0, 3)
    await ctx.blobs.put(summary_key, json.dumps(summary).encode())
    await ctx.progress(1, 1, f"{summary['status']['FAIL']} failing, {summary['new']} new, {len(errors)} error(s)")
    return summary


def _brief(f: Finding) -> dict[str, Any]:
    """A failure as the console lists it: what, where, since when, for how long, new or not."""
    return {"check_id": f.check_id, "severity": f.severity, "resource_id": f.resource_id, "region": f.region,
            "first_seen": f.first_seen, "open_days": open_days(f), "new": f.new}  # fmt: skip


async def _notify(
    ctx: JobContext, settings: AuditingSettings, audits: list[_Audit], new: list[Finding], errors: list[Finding],
    reg: Any,
) -> dict[str, Any]:  # fmt: skip
    """Every configured channel; a failing one fails the try, except on the last, where it is recorded."""
    done: dict[str, Any] = {}
    failures: list[str] = []

    async def attempt(name: str, coro: Any) -> None:
        try:
            done[name] = await coro
        except NotifyError as e:
            failures.append(f"{name}: {e}")

    accounts = [f"{a.provider}:{a.account or 'unknown'}" for a in audits]
    new_fail = [f for f in new if f.status == "FAIL"]
    new_errors = [f for f in errors if f.first_seen == f.last_seen]  # a standing error is not news every hour
    fixed_n = sum(len(a.rec.fixed) for a in audits)
    if settings.slack_webhook_url and (new_fail or new_errors or fixed_n):
        message = summary_message(new_fail, fixed_n, new_errors, accounts=accounts, report_url=settings.report_url)
        await attempt("slack", _count(send_slack(settings.slack_webhook_url, message)))
    if settings.pagerduty_routing_key:
        await attempt("pagerduty", _page(settings, audits))
    if settings.mail_enabled():
        messages = owner_messages(new_fail, settings.mail())
        await attempt("mail", asyncio.to_thread(send_messages, settings.mail(), messages))
    if settings.pushgateway_url:
        grouping = {"provider": ",".join(a.provider for a in audits), "account": ",".join(a.account for a in audits)}
        await attempt("pushgateway", _count(asyncio.to_thread(push, settings.pushgateway_url, reg, grouping)))
    if failures:
        if not ctx.last_try:
            raise NotifyError("; ".join(failures))
        done["failed"] = failures
    return done


async def _count(coro: Any) -> int:
    await coro
    return 1


async def _page(settings: AuditingSettings, audits: list[_Audit]) -> dict[str, int]:
    """Trigger for the new failures over the threshold not paged yet; resolve the fixed ones that were."""
    key, url = settings.pagerduty_routing_key, settings.pagerduty_url
    triggered = resolved = 0
    for a in audits:
        for f in to_page(a.rec.new, settings.page_severity, settings.page_high_count):
            if a.rec.state.get(f.key, {}).get("paged"):
                continue
            await send_event(url, trigger_event(key, f))
            a.rec.state[f.key]["paged"] = True
            triggered += 1
        for fixed in a.rec.fixed:
            if fixed.get("paged"):
                await send_event(url, resolve_event(key, fixed["key"]))
                resolved += 1
    return {"triggered": triggered, "resolved": resolved}


@plugin.job("checks", priority=PRIORITY_BATCH)
async def checks(ctx: JobContext, p: NoParams) -> list[dict[str, Any]]:
    """Every check the plugin knows (built in and from entry points), with its metadata."""
    try:
        return [{**ch.meta.to_dict(), "builtin": ch in BUILTIN_CHECKS} for ch in load_checks().checks]
    except AuditError as e:
        raise Abort(str(e)) from e


plugin.schedule("hourly", c.SCHEDULE_CRON, "run", {"scheduled": True})


__all__ = ["SCOPE_MUTE", "SCOPE_READ", "plugin"]
