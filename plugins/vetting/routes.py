"""The reviewers' routes under ``/v1/plugins/vetting/`` (docs/vetting.md lists them), all behind the
``vetting:review`` scope:

- ``GET queue``: the latest run's flags (or ``?run=<job id>``'s), one item per (donor, subject) pair
  with why it matched and its decision; ``?status=pending`` (default), ``decided`` or ``all``;
  ``?rule=``, ``?list=``; ``?limit=`` (default 200, at most 1000).
- ``POST decisions``: ``{"donor_key", "subject_key", "status": "cleared"|"confirmed", "reason"}``;
  the reviewer is the caller. Stored where ``vetting.decide`` stores them, read by every later run.
- ``GET decisions``: every recorded decision, latest first.

Every error is ``{"error": {"code", "message"}}``: ``invalid_request``, ``invalid_json``,
``run_not_found``, ``run_unreadable``, ``no_blob_store``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from katopotato.plugin import BlobStore, route_context

from .decisions import load_decisions, make_decision, save_decision
from .errors import DecisionError, FormatError, VettingError
from .jobs import SCOPE_REVIEW, plugin
from .review import build_queue, counts, load_run, run_ids

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = plugin.routes


class ApiError(VettingError):
    """An error answered as ``{"error": {"code", "message"}}`` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def api(fn: Handler) -> Handler:
    """Answers ApiError, bad bodies and unreadable run outputs as JSON errors with stable codes."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except ApiError as e:
            return error(e.status, e.code, str(e))
        except DecisionError as e:
            return error(400, "invalid_request", str(e))
        except FormatError as e:
            return error(500, "run_unreadable", str(e))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    return handler


def blobs_of(request: web.Request) -> BlobStore:
    blobs = route_context(request).blobs
    if blobs is None:
        raise ApiError(503, "no_blob_store", "this service has no blob store for the vetting runs")
    return blobs


class QueueQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str = Field(default="", max_length=200)
    status: Literal["pending", "decided", "all"] = "pending"
    rule: str = Field(default="", max_length=100)
    list: str = Field(default="", max_length=200)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    donor_key: str = Field(min_length=1, max_length=500)
    subject_key: str = Field(min_length=1, max_length=500)
    status: Literal["cleared", "confirmed"]
    reason: str = Field(min_length=1, max_length=2000)


@routes.get("/queue")
@plugin.requires(SCOPE_REVIEW)
@api
async def queue(request: web.Request) -> web.StreamResponse:
    q = QueueQuery.model_validate(dict(request.query))
    blobs = blobs_of(request)
    runs = await run_ids(blobs)
    if q.run and q.run not in {r for r, _ in runs}:
        raise ApiError(404, "run_not_found", f"no finished vetting run {q.run}")
    if not runs:
        return web.json_response({"run": None, "finished_at": None, "counts": counts([]), "items": [], "more": 0})
    run, finished_at = next((r for r in runs if r[0] == q.run), runs[0]) if q.run else runs[0]
    summary, flags = await load_run(blobs, run)
    items = build_queue(flags, await load_decisions(blobs))
    totals = counts(items)
    shown = [
        i for i in items
        if (q.status == "all" or (i.decision is None) == (q.status == "pending"))
        and (not q.rule or i.flags[0].rule == q.rule) and (not q.list or i.flags[0].list == q.list)
    ]  # fmt: skip
    return web.json_response({
        "run": run, "finished_at": finished_at, "source": summary.get("source", ""),
        "contributions": summary.get("contributions"), "counts": totals,
        "items": [i.to_dict() for i in shown[: q.limit]], "more": max(0, len(shown) - q.limit),
    })  # fmt: skip


@routes.post("/decisions")
@plugin.requires(SCOPE_REVIEW)
@api
async def decide(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    data = DecisionIn.model_validate(body)
    who = route_context(request).principal
    reviewer = str(who.email or who.name or who.token_id)
    decision = make_decision(data.donor_key, data.subject_key, data.status, data.reason, reviewer, str(who.token_id))
    await save_decision(blobs_of(request), decision)
    return web.json_response(decision.to_dict(), status=201)


@routes.get("/decisions")
@plugin.requires(SCOPE_REVIEW)
@api
async def list_decisions(request: web.Request) -> web.StreamResponse:
    decisions = sorted(await load_decisions(blobs_of(request)), key=lambda d: d.decided_at, reverse=True)
    return web.json_response({"decisions": [d.to_dict() for d in decisions]})


__all__ = ["routes"]
