"""The HTTP API (aiohttp): sessions, live events, transcripts, search, tokens, health, metrics.

``Service.open(settings)`` builds the parts; ``create_app(service)`` serves them. Routes are
declared as ``Operation``s, which also generate ``/openapi.json``; other packages add theirs with
``create_app(service, extra_operations=[...])``.
"""

from __future__ import annotations

from .app import create_app
from .errors import ApiError, BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable
from .openapi import ANY_TOKEN, PUBLIC, Answer, HeaderParam, Operation, openapi
from .service import PRINCIPAL, SERVICE, Service

__all__ = [
    "ANY_TOKEN",
    "PRINCIPAL",
    "PUBLIC",
    "SERVICE",
    "Answer",
    "ApiError",
    "BadRequest",
    "Forbidden",
    "HeaderParam",
    "NotFound",
    "Operation",
    "Service",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
    "create_app",
    "openapi",
]
