"""The aiohttp application: routes from the operations, auth, JSON errors, the console.

Middleware order (outermost first): ``errors`` turns every failure into ``{"error": {"code",
"message"}}`` (a traceback only ever reaches the log), counts requests for the metrics and writes
the audit line; each operation's handler is wrapped by ``_guarded``, which finds the principal
(``authn.authenticate``: an API token, an OIDC bearer JWT or the console's sign-in cookie) and
checks the scope the operation declares before the handler runs.

The audit log is one structured line per state-changing request (every method but GET/HEAD/
OPTIONS), per sign-in request and per refusal (401/403/429), on the logger ``katopotato.audit``:
who (the principal's id, name, kind, OIDC subject), what (method, route, path, and what it created:
its ``Location``), the status and the client address. A log line rather than a table: it costs
the request path nothing, never fails a request, and goes where the service's JSON logs already go
(stderr → the log store), which keeps it outside the reach of the database it describes; what a
request changed is in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from .authn import SAFE_METHODS, authenticate
from .errors import HTTP_CODES, ApiError, Forbidden, error_body, from_exception
from .http import check_query_names
from .jobs import mount_plugin_routes
from .openapi import MAX_BODY_BYTES, Operation, openapi
from .routes import operations
from .service import PRINCIPAL, SERVICE, Service
from .signin import mount_signin_routes

log = logging.getLogger(__name__)
audit_log = logging.getLogger("katopotato.audit")
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DESCRIPTION = (
    "KatoPotato: live transcription of media URLs. Every route but /healthz needs a bearer token "
    "(`Authorization: Bearer …`) with the scope it names. Errors are "
    '`{"error": {"code", "message"}}` with a stable code.'
)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    service = request.app[SERVICE]
    status = 500
    created = None
    try:
        response = await handler(request)
        status = response.status
        created = response.headers.get("Location") if status < 400 else None
        return response
    except ApiError as e:
        status = e.status
        headers = {"WWW-Authenticate": 'Bearer realm="katopotato"'} if e.status == 401 else None
        return e.response(headers)
    except web.HTTPException as e:
        status = e.status
        if e.status < 400:
            raise
        headers = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return web.json_response(
            error_body(HTTP_CODES.get(e.status, "error"), e.reason or "error"), status=e.status, headers=headers
        )
    except asyncio.CancelledError:
        raise
    except Exception as e:
        mapped = from_exception(e)
        if mapped is not None:
            status = mapped.status
            return mapped.response()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            error_body("internal_error", "internal error; the service log has the details"), status=500
        )
    finally:
        service.metrics.http_requests.labels(route, str(status)).inc()
        if request.method not in SAFE_METHODS or request.path.startswith("/v1/auth/") or status in (401, 403, 429):
            _audit(request, route, status, created)


def _audit(request: web.Request, route: str, status: int, created: str | None) -> None:
    p = request.get(PRINCIPAL)
    record = {
        "who": p.token_id if p else None,
        "name": p.name if p else None,
        "kind": p.kind if p else None,
        "subject": p.subject if p and p.subject else None,
        "method": request.method,
        "route": route,
        "path": request.path,
        "status": status,
        "created": created,  # what a POST made (its Location: a session, a job, a token)
        "remote": request.remote,
    }
    who = f"{p.name or p.token_id} ({p.kind} {p.token_id})" if p else "anonymous"
    audit_log.info("%s %s → %d by %s", request.method, request.path, status, who, extra={"audit": record})


def _guarded(op: Operation) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if op.scope is not None:
            principal = await authenticate(request)
            request[PRINCIPAL] = principal  # before the scope check: a refusal is audited with who asked
            if op.scope and not principal.allows(op.scope):
                raise Forbidden(f"this token lacks the {op.scope} scope")
        check_query_names(request, op.query)
        return await op.handler(request)

    handler.__name__ = op.operation_id
    return handler


CONSOLE_HEADERS = {
    "Cache-Control": "no-cache",
    # the page runs only its own script: no inline code, no other origin; audio and downloads are blobs
    "Content-Security-Policy": (
        "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _console(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "index.html", headers=CONSOLE_HEADERS)


def create_app(service: Service, *, extra_operations: Sequence[Operation] = ()) -> web.Application:
    """The app for ``service``; ``extra_operations`` add routes (e.g. the jobs API) to it and its schema."""
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY_BYTES)
    app[SERVICE] = service
    ops = [*operations(), *extra_operations]
    for op in ops:
        app.router.add_route(op.method, op.path, _guarded(op), name=op.operation_id)
    service.openapi_document = openapi(ops, title="KatoPotato", version=service.version, description=DESCRIPTION)
    mount_plugin_routes(app, service.registry)  # not in /openapi.json: they have no declared contract
    mount_signin_routes(app)  # browser redirects, not API: not in /openapi.json either
    app.router.add_get("/", _console, name="console")
    app.router.add_static("/static/", WEB_DIR, name="static", append_version=False)

    async def on_shutdown(_app: web.Application) -> None:
        await service.shutdown()

    app.on_shutdown.append(on_shutdown)
    return app


__all__ = ["create_app"]
