"""The routes under ``/v1/plugins/auditing/`` (docs/auditing.md lists them):

- ``GET findings`` (``auditing:read``): the current findings of every audited account — what the last
  run of each (provider, account) stored for the next (``store.py``), with first and last seen, the
  check's title and remediation, and the API mute that matches it, if any. Filters: ``provider``,
  ``account``, ``severity``, ``status`` (each a comma-separated list), ``check`` (a glob),
  ``first_seen_after``, ``last_seen_after`` (ISO 8601); ``limit`` (default 500, at most 5000).
- ``GET mutes`` (``auditing:read``): the mutes made through the API.
- ``POST mutes`` (``auditing:mute``): a mute-list rule (``provider``, ``account``, ``check``,
  ``region``, ``resource``: globs, default any; ``expires``; ``reason``); its ``who`` is the caller.
  It applies from the next run on, with the configured mute list file.
- ``DELETE mutes/{id}`` (``auditing:mute``): unmute (from the next run on).

Every error is ``{"error": {"code", "message"}}``: ``invalid_request``, ``invalid_json``,
``mute_not_found``, ``state_unreadable``, ``no_blob_store``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from katopotato.plugin import BlobStore, route_context

from .constants import PROVIDERS, SEVERITIES, SEVERITY_ID, STATE_BLOB_PREFIX, STATUSES
from .errors import AuditError
from .jobs import SCOPE_MUTE, SCOPE_READ, plugin
from .mutelist import Mute
from .mutes import StoredMute, delete_mute, load_mutes, save_mute
from .registry import load_checks

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
STATUS_ORDER = {"FAIL": 0, "ERROR": 1, "MUTED": 2, "PASS": 3}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = plugin.routes


class ApiError(AuditError):
    """An error answered as ``{"error": {"code", "message"}}`` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def api(fn: Handler) -> Handler:
    """Answers ApiError, bad queries and bodies and unreadable stored state as JSON errors."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except ApiError as e:
            return error(e.status, e.code, str(e))
        except AuditError as e:
            return error(500, "state_unreadable", str(e))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    return handler


def blobs_of(request: web.Request) -> BlobStore:
    blobs = route_context(request).blobs
    if blobs is None:
        raise ApiError(503, "no_blob_store", "this service has no blob store for the audit state")
    return blobs


def _words(value: str, allowed: tuple[str, ...], name: str) -> list[str]:
    words = [w.strip() for w in value.split(",") if w.strip()]
    bad = [w for w in words if w not in allowed]
    if bad:
        raise ValueError(f"unknown {name} {', '.join(bad)} (one of {', '.join(allowed)})")
    return words


class FindingsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: list[str] = Field(default_factory=list)
    account: list[str] = Field(default_factory=list)
    severity: list[str] = Field(default_factory=list)
    status: list[str] = Field(default_factory=list)
    check: str = Field(default="*", min_length=1, max_length=200)
    first_seen_after: dt.datetime | None = None
    last_seen_after: dt.datetime | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @field_validator("provider", "account", "severity", "status", mode="before")
    @classmethod
    def _split(cls, v: Any, info: Any) -> Any:
        if not isinstance(v, str):
            return v
        allowed = {"provider": PROVIDERS, "severity": SEVERITIES, "status": STATUSES}.get(info.field_name)
        if allowed is None:
            return [w.strip() for w in v.split(",") if w.strip()]
        return _words(v, allowed, info.field_name)

    @field_validator("first_seen_after", "last_seen_after")
    @classmethod
    def _utc(cls, v: dt.datetime | None) -> dt.datetime | None:
        return v.replace(tzinfo=dt.UTC) if v is not None and v.tzinfo is None else v


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str = Field(default="*", min_length=1, max_length=100)
    account: str = Field(default="*", min_length=1, max_length=200)
    check: str = Field(default="*", min_length=1, max_length=200)
    region: str = Field(default="*", min_length=1, max_length=100)
    resource: str = Field(default="*", min_length=1, max_length=2000)
    expires: dt.date | None = None
    reason: str = Field(min_length=1, max_length=1000)


def _seen(value: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(value)
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


async def _state(blobs: BlobStore) -> list[dict[str, Any]]:
    """Every stored finding, flattened, with its provider and account."""
    out = []
    for info in await blobs.list(STATE_BLOB_PREFIX):
        try:
            doc = json.loads(await blobs.get(info.key))
            provider, account, entries = str(doc["provider"]), str(doc["account"]), doc["findings"]
            out += [{"key": key, "provider": provider, "account": account, **entry} for key, entry in entries.items()]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise AuditError(f"the stored audit state {info.key} is unreadable: {e}") from e
    return out


def _live_mute(mutes: list[StoredMute], f: dict[str, Any], today: dt.date) -> StoredMute | None:
    return next(
        (m for m in mutes if not m.mute.expired(today) and m.mute.matches_fields(
            f["provider"], f["account"], f["check_id"], f["region"], f["resource_id"], {}
        )),
        None,
    )  # fmt: skip


def _check_info() -> dict[str, dict[str, str]]:
    """Title and remediation of every known check (none if a third-party check is broken)."""
    try:
        registry = load_checks()
    except AuditError:
        return {}
    return {
        ch.meta.id: {
            "title": ch.meta.title,
            "remediation": ch.meta.remediation,
            "remediation_url": ch.meta.remediation_url,
        }
        for ch in registry.checks
    }


@routes.get("/findings")
@plugin.requires(SCOPE_READ)
@api
async def findings(request: web.Request) -> web.StreamResponse:
    q = FindingsQuery.model_validate(dict(request.query))
    blobs = blobs_of(request)
    mutes = await load_mutes(blobs)
    today = dt.datetime.now(dt.UTC).date()
    info = _check_info()
    rows = []
    for f in await _state(blobs):
        if (q.provider and f["provider"] not in q.provider) or (q.account and f["account"] not in q.account):
            continue
        if (q.severity and f["severity"] not in q.severity) or (q.status and f["status"] not in q.status):
            continue
        if not fnmatch.fnmatchcase(f["check_id"], q.check):
            continue
        if q.first_seen_after and _seen(f["first_seen"]) < q.first_seen_after:
            continue
        if q.last_seen_after and _seen(f["last_seen"]) < q.last_seen_after:
            continue
        mute = _live_mute(mutes, f, today)
        f.pop("paged", None)
        rows.append({**f, **info.get(f["check_id"], {}), "mute": mute.to_dict() if mute else None})
    rows.sort(key=lambda f: (STATUS_ORDER.get(f["status"], 9), -SEVERITY_ID.get(f["severity"], 0), f["first_seen"],
                             f["check_id"], f["resource_id"]))  # fmt: skip
    counts = {s: sum(1 for f in rows if f["status"] == s) for s in STATUSES}
    return web.json_response({"findings": rows[: q.limit], "counts": counts, "more": max(0, len(rows) - q.limit)})


@routes.get("/mutes")
@plugin.requires(SCOPE_READ)
@api
async def list_mutes(request: web.Request) -> web.StreamResponse:
    return web.json_response({"mutes": [m.to_dict() for m in await load_mutes(blobs_of(request))]})


@routes.post("/mutes")
@plugin.requires(SCOPE_MUTE)
@api
async def mute(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    data = MuteIn.model_validate(body)
    who = route_context(request).principal
    rule = Mute.model_validate({**data.model_dump(), "who": str(who.email or who.name or who.token_id)})
    stored = await save_mute(blobs_of(request), rule, str(who.token_id))
    return web.json_response(stored.to_dict(), status=201)


@routes.delete("/mutes/{id}")
@plugin.requires(SCOPE_MUTE)
@api
async def unmute(request: web.Request) -> web.StreamResponse:
    mute_id = request.match_info["id"]
    if not await delete_mute(blobs_of(request), mute_id):
        raise ApiError(404, "mute_not_found", f"no mute {mute_id}")
    return web.json_response({"id": mute_id, "deleted": True})


__all__ = ["routes"]
