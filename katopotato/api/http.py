"""The HTTP helpers every route module shares: the request's service and principal, query and
body parsing (a ``BadRequest`` with pydantic's message when they do not fit), JSON answers, the
opaque pagination cursors, and the Server-Sent Events timing."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..auth import Principal
from .errors import BadRequest, validation_message
from .service import PRINCIPAL, SERVICE, Service

M = TypeVar("M", bound=BaseModel)
SSE_KEEPALIVE_S = 15.0
SSE_RETRY_MS = 2000


def get_service(request: web.Request) -> Service:
    return request.app[SERVICE]


def get_principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRequest(validation_message(e)) from e


def parse_query(request: web.Request, model: type[M]) -> M:
    return validate(model, dict(request.query))


def check_query_names(request: web.Request, model: type[BaseModel] | None) -> None:
    """A parameter the route does not know is an error (a typo like ``?staus=failed`` must not
    silently list everything), and so is one given twice."""
    known = model.model_fields if model is not None else {}
    unknown = sorted(k for k in request.query if k not in known)
    if unknown:
        hint = f"; this route knows {', '.join(known)}" if known else "; this route takes none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r}{hint}")
    if len(set(request.query)) != len(request.query):
        raise BadRequest("a query parameter is given more than once")


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from e
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    return data


async def parse_body(request: web.Request, model: type[M]) -> M:
    return validate(model, await json_object(request))


def json_response(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The JSON value of a cursor from ``encode_cursor``; a 400 ``invalid_cursor`` when it is not one."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, UnicodeError) as e:
        raise BadRequest("the cursor is not one this service handed out", code="invalid_cursor") from e


__all__ = [
    "SSE_KEEPALIVE_S",
    "SSE_RETRY_MS",
    "check_query_names",
    "decode_cursor",
    "encode_cursor",
    "get_principal",
    "get_service",
    "json_object",
    "json_response",
    "parse_body",
    "parse_query",
    "validate",
]
