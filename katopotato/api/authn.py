"""Who is asking: the one place a request's credentials become a ``Principal``.

Three credentials, in this order:

1. ``Authorization: Bearer kp_…``: an API token (machines), with its scopes and optional expiry.
2. ``Authorization: Bearer <JWT>``: a token of the configured OIDC issuer; its groups map to
   scopes. Refusals are 401s with a code per kind (``token_expired``, ``token_not_yet_valid``,
   ``wrong_audience``, ``wrong_issuer``, ``bad_signature``, ``unknown_key``, ``invalid_token``);
   a valid token that maps to no role is a 403 ``no_role`` (``domain_not_allowed`` for a Google
   account outside the allowed domains).
3. The console's sign-in cookie (``kp_session``, HttpOnly): a console token made at sign-in. A
   state-changing request made with it must carry ``X-CSRF-Token``, a value derived from the
   cookie that only a page of this origin can read (from ``GET /v1/me``): a 403 ``csrf_failed``
   otherwise. An Authorization header, when present, wins over the cookie.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from ..auth import KIND_CONSOLE, TOKEN_PREFIX, Principal
from ..errors import NotPermitted, ProviderUnavailable, TokenRejected
from .errors import Forbidden, Unauthorized, Unavailable
from .service import SERVICE

SESSION_COOKIE = "kp_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_secret: str) -> str:
    """The CSRF token of a console sign-in: one-way from the cookie's secret."""
    return hashlib.sha256(f"katopotato csrf\n{session_secret}".encode()).hexdigest()


def _looks_like_jwt(token: str) -> bool:
    return not token.startswith(TOKEN_PREFIX) and token.count(".") == 2


async def authenticate(request: web.Request) -> Principal:
    """The request's principal; raises Unauthorized (401), Forbidden (403) or Unavailable (503)."""
    service = request.app[SERVICE]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("a bearer token is needed: Authorization: Bearer <token>")
        if service.identities is not None and _looks_like_jwt(token):
            try:
                return await service.identities.principal_for_jwt(token)
            except TokenRejected as e:
                raise Unauthorized(str(e), code=e.code) from e
            except NotPermitted as e:
                raise Forbidden(str(e), code=e.code) from e
            except ProviderUnavailable as e:
                raise Unavailable(str(e), code=e.code) from e
        principal = await service.tokens.authenticate(token)
        if principal is None:
            raise Unauthorized("this token is not valid (unknown, expired or revoked)")
        return principal
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        principal = await service.tokens.authenticate(secret)
        if principal is None or principal.kind != KIND_CONSOLE:
            raise Unauthorized("your sign-in has expired or ended: sign in again", code="session_expired")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), csrf_token(secret).encode()):
                message = f"a request made with the sign-in cookie needs the {CSRF_HEADER} header"
                raise Forbidden(message, code="csrf_failed")
        return principal
    raise Unauthorized("a bearer token is needed: Authorization: Bearer <token>")


__all__ = ["CSRF_HEADER", "SAFE_METHODS", "SESSION_COOKIE", "authenticate", "csrf_token"]
