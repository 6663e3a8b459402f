"""The jobs API: plugins and their jobs on the scheduler, and the plugins' own routes.

``GET /v1/plugins`` lists what the plugin registry holds (``PluginRegistry.describe``); ``POST
/v1/jobs`` enqueues a plugin job (checked against its parameter model: an unknown kind or bad
parameters is a 400, nothing is queued); the other routes read, cancel, requeue and follow jobs
(Server-Sent Events resumable with ``Last-Event-ID``, the ids of the job's event stream). The
transcription plugin's jobs (capture, ASR) are listed and readable but are started through
``POST /v1/sessions`` only.

A plugin's ``routes`` are mounted under ``/v1/plugins/<name>/`` (``mount_plugin_routes``), behind
the same bearer-token check: ``jobs:read`` for GET and HEAD, ``jobs:write`` for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from ..broker.base import parse_entry_id
from ..errors import PluginError
from ..jobs import Job, JobEvent, JobStatus, job_events_stream
from ..plugin import ROUTE_CONTEXT, SCOPE_ATTRIBUTE, Plugin, RouteContext
from ..plugin_host import PluginRegistry
from .authn import authenticate
from .errors import BadRequest, Forbidden
from .http import (
    SSE_KEEPALIVE_S,
    SSE_RETRY_MS,
    decode_cursor,
    encode_cursor,
    get_service,
    json_response,
    parse_body,
    parse_query,
    validate,
)
from .models import (
    JobCreate,
    JobEventsQuery,
    JobList,
    JobListQuery,
    JobOut,
    JobPath,
    JobResultOut,
    PluginList,
    PluginOut,
)
from .openapi import Answer, HeaderParam, Operation, too_large
from .service import PRINCIPAL, SERVICE

log = logging.getLogger(__name__)
SESSION_KINDS_PLUGIN = "transcription"  # its jobs are started by POST /v1/sessions
STREAM_ID = re.compile(r"^(0|[0-9]{1,15}-[0-9]{1,10})$")
_STRING: dict[str, Any] = {"type": "string"}


def job_out(job: Job) -> JobOut:
    d = job.to_dict()
    d.pop("v", None)
    d.pop("result_ref", None)
    return JobOut.model_validate({**d, "dead": job.dead, "has_result": job.status is JobStatus.SUCCEEDED})


def _job_id(request: web.Request) -> str:
    return validate(JobPath, dict(request.match_info)).id


def _decode_job_cursor(cursor: str) -> str:
    raw = decode_cursor(cursor)
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], str) or not raw[0]:
        raise BadRequest("the cursor is not one this service handed out", code="invalid_cursor")
    return raw[0]


# --- handlers -----------------------------------------------------------------------------------------


async def list_plugins(request: web.Request) -> web.StreamResponse:
    registry = get_service(request).registry
    plugins = [
        PluginOut.model_validate({**p, "routes": f"/v1/plugins/{p['name']}/" if p["has_routes"] else None})
        for p in registry.describe()
    ]
    return json_response(PluginList(plugins=plugins))


async def create_job(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    body = await parse_body(request, JobCreate)
    if body.kind.partition(".")[0] == SESSION_KINDS_PLUGIN and body.kind in service.registry.kinds():
        raise BadRequest(f"{body.kind} jobs are started by POST /v1/sessions", code="kind_not_allowed")
    job, created = await service.scheduler.submit(
        body.kind, body.params, priority=body.priority, idempotency_key=body.idempotency_key
    )
    return json_response(job_out(job), 202 if created else 200, headers={"Location": f"/v1/jobs/{job.id}"})


async def list_jobs(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    q = parse_query(request, JobListQuery)
    if q.dead:
        if q.cursor:
            raise BadRequest("the dead-letter list is not paged: leave out cursor", code="invalid_cursor")
        jobs = await service.scheduler.dead_letters(limit=q.limit)
        jobs = [j for j in jobs if (not q.kind or j.kind == q.kind)]
        return json_response(JobList(jobs=[job_out(j) for j in jobs], next_cursor=None))
    before = _decode_job_cursor(q.cursor) if q.cursor else None
    try:
        jobs = await service.broker.list_jobs(kind=q.kind, status=q.status, limit=q.limit + 1, before=before)
    except LookupError as e:  # the job the cursor names has expired
        raise BadRequest(f"the cursor is no longer valid: {e}", code="invalid_cursor") from e
    more = len(jobs) > q.limit
    jobs = jobs[: q.limit]
    return json_response(
        JobList(
            jobs=[job_out(j) for j in jobs],
            next_cursor=encode_cursor([jobs[-1].id]) if more and jobs else None,
        )
    )


async def get_job(request: web.Request) -> web.StreamResponse:
    return json_response(job_out(await get_service(request).scheduler.get(_job_id(request))))


async def job_result(request: web.Request) -> web.StreamResponse:
    job_id = _job_id(request)
    value = await get_service(request).scheduler.result(job_id)
    return json_response(JobResultOut(id=job_id, result=value))


async def cancel_job(request: web.Request) -> web.StreamResponse:
    job = await get_service(request).scheduler.cancel(_job_id(request))
    return json_response(job_out(job), 202 if job.status is JobStatus.RUNNING else 200)


async def requeue_job(request: web.Request) -> web.StreamResponse:
    job = await get_service(request).scheduler.requeue(_job_id(request))
    return json_response(job_out(job))


def _last_event_id(request: web.Request, q: JobEventsQuery) -> str:
    after = q.last_event_id or "0"
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not STREAM_ID.match(header):
            raise BadRequest("Last-Event-ID must be a job event id (<ms>-<n>)")
        if parse_entry_id(header) > parse_entry_id(after):
            after = header
    return after


async def job_events(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    job_id = _job_id(request)
    after = _last_event_id(request, parse_query(request, JobEventsQuery))
    job = await service.scheduler.get(job_id)
    if job.status.terminal and not await service.broker.read(job_events_stream(job_id), after, count=1):
        return web.Response(status=204)  # it ended and the client has seen the end
    resp = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    await resp.prepare(request)
    queue: asyncio.Queue[JobEvent | None] = asyncio.Queue(maxsize=100)

    async def pump() -> None:
        try:
            async for ev in service.scheduler.events(job_id, after=after):
                await queue.put(ev)
        finally:
            await queue.put(None)

    task = asyncio.create_task(pump(), name=f"job-sse-{job_id}")
    try:
        await resp.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
        while True:
            try:
                ev = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if ev is None:
                break
            data = json.dumps(ev.to_dict(), separators=(",", ":"))
            await resp.write(f"id: {ev.id}\ndata: {data}\n\n".encode())
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client went away, or the service is stopping
    except Exception:  # the stream has begun: no JSON error can be sent any more
        log.exception("SSE stream of job %s failed", job_id)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return resp


# --- plugin routes -----------------------------------------------------------------------------------


def _plugin_guard(handler: Handler, scope: str | None, plugin: Plugin, settings: BaseModel | None) -> Handler:
    """Checks the bearer token (unless ``scope`` is None: a public route) and puts the route's
    context (settings, database, principal, blob store) on the request."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        principal = None
        if scope is not None:
            principal = await authenticate(request)
            request[PRINCIPAL] = principal
            if not principal.allows(scope):
                raise Forbidden(f"this token lacks the {scope} scope")
        service = request.app[SERVICE]
        request[ROUTE_CONTEXT] = RouteContext(plugin, settings, service.db, principal, service.blobs)
        return await handler(request)

    return guarded


def mount_plugin_routes(app: web.Application, registry: PluginRegistry) -> list[str]:
    """Add every plugin's routes under ``/v1/plugins/<name>/``; returns the paths added."""
    added = []
    for plugin in registry.plugins:
        settings = registry.settings_for(plugin.name)
        for route in plugin.routes:
            if not isinstance(route, web.RouteDef):
                continue  # static files are not served for plugins
            path = f"/v1/plugins/{plugin.name}/{route.path.lstrip('/')}"
            handler: Handler = route.handler
            public = f"{route.method} /{route.path.lstrip('/')}" in plugin.public_routes
            default = "jobs:read" if route.method in ("GET", "HEAD") else "jobs:write"
            scope = None if public else getattr(handler, SCOPE_ATTRIBUTE, default)
            app.router.add_route(route.method, path, _plugin_guard(handler, scope, plugin, settings), **route.kwargs)
            added.append(f"{route.method} {path}")
        for cleanup in plugin.on_cleanup:
            app.on_cleanup.append(_run_cleanup(cleanup))
        _describe_plugin_routes(app[SERVICE].openapi_document, plugin)
    return added


def _describe_plugin_routes(document: dict[str, Any], plugin: Plugin) -> None:
    """Add the OpenAPI a plugin declares for its routes to the service's document."""
    if not plugin.openapi or "paths" not in document:
        return
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in plugin.openapi.get("schemas", {}).items():
        if name in schemas:
            raise PluginError(f"plugin {plugin.name} declares OpenAPI schema {name}, which exists already")
        schemas[name] = schema
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, item in plugin.openapi.get("paths", {}).items():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:  # the host's body limit
                operation.setdefault("responses", {}).setdefault("413", too_large(error))
        document["paths"][f"/v1/plugins/{plugin.name}/{path.lstrip('/')}"] = item


def _run_cleanup(fn: Callable[[], Awaitable[None]]) -> Callable[[web.Application], Awaitable[None]]:
    async def run(_app: web.Application) -> None:
        await fn()

    return run


# --- the declarations -----------------------------------------------------------------------------

_JOB_ANSWERS_404 = "no job with that id (or its record expired): `job_not_found`"
JOB_OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/v1/plugins",
        list_plugins,
        "listPlugins",
        "Registered plugins: their jobs (with parameter schemas), schedules and routes",
        "jobs",
        "jobs:read",
        {200: Answer("the plugins", PluginList)},
    ),
    Operation(
        "POST",
        "/v1/jobs",
        create_job,
        "createJob",
        "Run a plugin job",
        "jobs",
        "jobs:write",
        {
            200: Answer("the job an idempotency key already named", JobOut, headers={"Location": _STRING}),
            202: Answer("the job, queued", JobOut, headers={"Location": _STRING}),
        },
        body=JobCreate,
        description="`params` are checked against the job's parameter schema before anything is queued: an "
        "unknown kind is a 400 `unknown_kind`, bad parameters a 400 `invalid_params`; transcription jobs are "
        "started by POST /v1/sessions (`kind_not_allowed`).",
    ),
    Operation(
        "GET",
        "/v1/jobs",
        list_jobs,
        "listJobs",
        "Jobs, newest first (or the dead-letter list)",
        "jobs",
        "jobs:read",
        {200: Answer("a page of jobs", JobList)},
        query=JobListQuery,
    ),
    Operation(
        "GET",
        "/v1/jobs/{id}",
        get_job,
        "getJob",
        "A job: status, progress, tries, error",
        "jobs",
        "jobs:read",
        {200: Answer("the job", JobOut)},
        path_params=JobPath,
    ),
    Operation(
        "GET",
        "/v1/jobs/{id}/result",
        job_result,
        "jobResult",
        "What a job returned",
        "jobs",
        "jobs:read",
        {
            200: Answer("the result", JobResultOut),
            409: Answer("the job has not succeeded: `job_not_finished`, `job_failed`, `job_cancelled`"),
        },
        path_params=JobPath,
        description="A 404 `result_expired` when the result was kept for less time than has passed.",
    ),
    Operation(
        "DELETE",
        "/v1/jobs/{id}",
        cancel_job,
        "cancelJob",
        "Cancel a job",
        "jobs",
        "jobs:write",
        {
            200: Answer("the job, cancelled (it was queued) or already finished", JobOut),
            202: Answer("the job, running: its worker stops it at its next heartbeat", JobOut),
        },
        path_params=JobPath,
    ),
    Operation(
        "POST",
        "/v1/jobs/{id}/requeue",
        requeue_job,
        "requeueJob",
        "Run a failed (dead-lettered) or cancelled job again, with fresh tries",
        "jobs",
        "jobs:write",
        {
            200: Answer("the job, queued again", JobOut),
            409: Answer("the job is queued, running or succeeded: `job_state`"),
        },
        path_params=JobPath,
    ),
    Operation(
        "GET",
        "/v1/jobs/{id}/events",
        job_events,
        "jobEvents",
        "A job's status changes and progress (Server-Sent Events)",
        "jobs",
        "jobs:read",
        {
            200: Answer(
                "an event stream: `id:` is the event id, `data:` one JSON object (`type` status or progress, "
                "`status`, `at`, `progress`, `error`, `tries`); it closes after the job's final status",
                media={"text/event-stream": _STRING},
            ),
            204: Answer("the job ended and nothing follows the given Last-Event-ID"),
        },
        path_params=JobPath,
        query=JobEventsQuery,
        headers=(
            HeaderParam(
                "Last-Event-ID",
                {"type": "string", "pattern": STREAM_ID.pattern},
                "resume after this event id, with no loss and no repeats",
            ),
        ),
    ),
]


__all__ = ["JOB_OPERATIONS", "job_out", "mount_plugin_routes"]
