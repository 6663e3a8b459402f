"""HTTP errors of the API: every error is ``{"error": {"code", "message"}}`` with a stable code.

    ApiError(status, code, message)
    ├── BadRequest        400 invalid_request, invalid_json, invalid_query, invalid_cursor, url_refused,
    │                         sink_refused, unknown_kind, invalid_params, kind_not_allowed
    ├── Unauthorized      401 unauthorized, session_expired, token_expired, token_not_yet_valid,
    │                         wrong_audience, wrong_issuer, bad_signature, unknown_key, invalid_token
    ├── Forbidden         403 forbidden, no_role, domain_not_allowed, csrf_failed
    ├── NotFound          404 not_found, session_not_found, audio_not_kept, job_not_found, result_expired
    ├── Conflict          409 output_exists, job_not_finished, job_failed, job_cancelled, job_state,
    │                         swap_refused
    ├── Unprocessable     422 source_not_found, source_unreachable, not_media, no_audio_track,
    │                         source_stalled, no_audio, silence_timeout, source_error, unsupported_option,
    │                         invalid_outputs
    ├── Unavailable       503 unavailable, search_unavailable, broker_unavailable, oidc_unavailable
    └── TooManyRequests   429 too_many_requests (ratelimit.py: the sign-in endpoints)

``error_body`` builds the JSON; ``from_exception`` maps the exceptions of every package to these
through one table (``ERROR_MAP``), so a handler only raises. Anything unexpected becomes a 500
``internal_error`` whose message names no internals (the traceback goes to the log).

``ConfigError`` (the core's, and katopotato's subclass) is deliberately not in the table: what a
client sends is checked where it enters (the request models: 400 ``invalid_request`` /
``invalid_params``; ``check_options``: 422 ``unsupported_option``), so a ``ConfigError`` that
reaches a handler is the service's own configuration (a bad ASR URL, a missing corrections file):
a 500 ``internal_error``, logged, its message (paths, URLs) kept from the client.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from couchpotato import errors as core
from docsweb import DuplicateSink, SinkConfigError
from hotpotato.errors import SwapRefused

from .. import errors as kp

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answer: HTTP status, stable code, one-line message."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(error_body(self.code, self.message), status=self.status, headers=headers)


class BadRequest(ApiError):
    """400: the request is malformed or asks for something refused."""


class Unauthorized(ApiError):
    """401: no token, or a token this service does not know."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """403: the token lacks the scope the route needs."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """404: no such resource."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the resource is not in a state that allows it (a duplicate, a job not finished…)."""

    status = 409
    code = "conflict"


class Unprocessable(ApiError):
    """422: well-formed, but cannot be done (the source cannot be captured…)."""

    status = 422
    code = "unprocessable"


class Unavailable(ApiError):
    """503: a dependency is down, or the service is shutting down."""

    status = 503
    code = "unavailable"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# The one mapping from the exceptions the service expects to its answers: (exception, answer,
# stable code); the first that matches wins. A handler only raises; nothing else maps errors.
ERROR_MAP: tuple[tuple[type[BaseException], type[ApiError], str], ...] = (
    (core.UrlRefused, BadRequest, "url_refused"),
    (core.SourceNotFound, Unprocessable, "source_not_found"),
    (core.SourceUnreachable, Unprocessable, "source_unreachable"),
    (core.NotMedia, Unprocessable, "not_media"),
    (core.NoAudioTrack, Unprocessable, "no_audio_track"),
    (core.SourceStalled, Unprocessable, "source_stalled"),
    (core.SourceError, Unprocessable, "source_error"),
    (kp.UnsupportedOption, Unprocessable, "unsupported_option"),
    (kp.SessionNotFound, NotFound, "session_not_found"),
    (kp.AudioNotKept, NotFound, "audio_not_kept"),
    (kp.SessionError, Unavailable, "unavailable"),
    (SinkConfigError, BadRequest, "sink_refused"),
    (DuplicateSink, Conflict, "output_exists"),
    (SwapRefused, Conflict, "swap_refused"),
    (kp.InvalidQuery, BadRequest, "invalid_query"),
    (kp.InvalidCursor, BadRequest, "invalid_cursor"),
    (kp.SearchUnavailable, Unavailable, "search_unavailable"),
    (kp.InvalidScope, BadRequest, "invalid_request"),
    (kp.JobNotFound, NotFound, "job_not_found"),
    (kp.UnknownKind, BadRequest, "unknown_kind"),
    (kp.InvalidParams, BadRequest, "invalid_params"),
    (kp.ResultNotReady, Conflict, "job_not_finished"),
    (kp.ResultExpired, NotFound, "result_expired"),
    (kp.JobFailed, Conflict, "job_failed"),
    (kp.JobCancelled, Conflict, "job_cancelled"),
    (kp.JobStateError, Conflict, "job_state"),
    (kp.BrokerUnavailable, Unavailable, "broker_unavailable"),
    (kp.TokenRejected, Unauthorized, "invalid_token"),
    (kp.NotPermitted, Forbidden, "no_role"),
    (kp.ProviderUnavailable, Unavailable, "oidc_unavailable"),
)


def from_exception(e: BaseException) -> ApiError | None:
    """The API error for an exception the service expects (``ERROR_MAP``), None for anything else."""
    if isinstance(e, ApiError):
        return e
    for cls, answer, code in ERROR_MAP:
        if isinstance(e, cls):
            return answer(str(e), code=_own_code(e) or code)
    return None


def _own_code(e: BaseException) -> str | None:
    """A source error that names its own code (the browser capture's ``no_audio``) keeps it, and
    so does an auth error (``token_expired``, ``wrong_audience``…)."""
    if isinstance(e, kp.AuthError):
        return e.code
    if isinstance(e, core.SourceError) and not isinstance(e, core.UrlRefused):
        own = getattr(e, "code", None)
        if isinstance(own, str) and own:
            return own
    return None


def validation_message(e: ValidationError) -> str:
    """One line from pydantic's errors: where and what, for the first few."""
    parts = []
    for err in e.errors()[:3]:
        where = ".".join(str(x) for x in err.get("loc", ())) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(e.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


__all__ = [
    "ERROR_MAP",
    "HTTP_CODES",
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "error_body",
    "from_exception",
    "validation_message",
]
