"""The console's OIDC sign-in: authorization code flow with PKCE, a cookie session, sign-out.

    GET  /v1/auth/config     public: is OIDC sign-in available (the console shows its button)
    GET  /v1/auth/login      302 to the provider (state, nonce, S256 code challenge)
    GET  /v1/auth/callback   the provider sends the browser back here with a code: the code is
                             exchanged (with the verifier and the client's secret), the ID token
                             checked (signature, issuer, audience = the client id, nonce), the
                             user's groups mapped to scopes, and a console sign-in made
    POST /v1/auth/logout     ends the sign-in (revokes it; needs the CSRF header)

Between login and callback the flow's secrets (state, code verifier, nonce, where to return) wait
in a short-lived HttpOnly cookie (``kp_login``, SameSite=Lax so the provider's redirect back
carries it, 10 minutes), so any API process can finish a flow another began. The sign-in itself is
a console token (``auth.KIND_CONSOLE``) in the ``kp_session`` cookie: HttpOnly, SameSite=Strict,
Secure unless the service is reached over plain http on a loopback address (a developer's
machine). The user's state-changing requests carry the CSRF token ``GET /v1/me`` hands out.

Every route here is rate limited per client address (``RateLimiter``: 429 with Retry-After).
These routes are not in ``/openapi.json``: they are browser redirects, not an API.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from ..auth import KIND_CONSOLE, Principal
from ..errors import NotPermitted, ProviderUnavailable, TokenRejected
from ..identity import Identities
from ..oidc import challenge, is_loopback_host, new_state, new_verifier
from .authn import SESSION_COOKIE, authenticate
from .errors import BadRequest, NotFound
from .ratelimit import RateLimiter
from .service import PRINCIPAL, SERVICE

log = logging.getLogger(__name__)
LOGIN_COOKIE = "kp_login"
LOGIN_TTL_S = 600
CALLBACK_PATH = "/v1/auth/callback"
RATE_LIMITER = web.AppKey("katopotato.auth_rate_limiter", RateLimiter)
OIDC_SCOPES = "openid email profile"


def _limited(request: web.Request) -> None:
    request.app[RATE_LIMITER].check(request.remote or "unknown")


def _secure(request: web.Request) -> bool:
    """Cookies are Secure unless this is plain http to a loopback address (a developer's machine)."""
    public = request.app[SERVICE].settings.public_url
    if request.secure or urlsplit(public).scheme == "https":
        return True
    return not is_loopback_host(request.url.host or "")


def _base_url(request: web.Request) -> str:
    public = request.app[SERVICE].settings.public_url
    return public or f"{request.scheme}://{request.host}"


def _safe_next(value: str) -> str:
    """Where to return after sign-in: a path of this origin only (never ``//host`` or a URL; a
    browser drops tabs and newlines from a URL, so ``/<tab>/host`` would be ``//host``)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    return value[:500]


def _identities(request: web.Request) -> Identities:
    service = request.app[SERVICE]
    if service.identities is None or not service.settings.oidc.console_sign_in:
        raise NotFound("OIDC sign-in is not configured on this service", code="oidc_not_configured")
    return service.identities


async def auth_config(request: web.Request) -> web.Response:
    oidc = request.app[SERVICE].settings.oidc
    return web.json_response({"oidc": oidc.console_sign_in, "login_url": "/v1/auth/login"})


async def login(request: web.Request) -> web.StreamResponse:
    _limited(request)
    identities = _identities(request)
    meta = await identities.provider.metadata()
    if not meta.authorization_endpoint:
        raise ProviderUnavailable("the OIDC provider names no authorization endpoint")
    state, verifier, nonce = new_state(), new_verifier(), new_state()
    after = _safe_next(request.query.get("next", "/"))
    params = {
        "response_type": "code",
        "client_id": identities.settings.client_id,
        "redirect_uri": _base_url(request) + CALLBACK_PATH,
        "scope": OIDC_SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    response = _redirect(f"{meta.authorization_endpoint}?{urlencode(params)}")
    packed = base64.urlsafe_b64encode(json.dumps([state, verifier, nonce, after]).encode()).decode()
    response.set_cookie(
        LOGIN_COOKIE,
        packed,
        max_age=LOGIN_TTL_S,
        path="/v1/auth/",
        httponly=True,
        secure=_secure(request),
        samesite="Lax",
    )
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _back_to_console(error: str, message: str) -> web.Response:
    response = _redirect("/#/signin?" + urlencode({"error": error, "message": message}))
    response.del_cookie(LOGIN_COOKIE, path="/v1/auth/")
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    _limited(request)
    identities = _identities(request)
    try:
        state, verifier, nonce, after = json.loads(base64.urlsafe_b64decode(request.cookies.get(LOGIN_COOKIE, "")))
    except (ValueError, TypeError) as e:
        message = "no sign-in is in progress in this browser (or it took too long)"
        raise BadRequest(message, code="sign_in_failed") from e
    if not hmac.compare_digest(str(state).encode(), request.query.get("state", "").encode()):
        raise BadRequest("the sign-in's state does not match this browser's", code="sign_in_failed")
    if "error" in request.query:
        return _back_to_console("sign_in_failed", f"the provider said: {request.query['error']}"[:200])
    code = request.query.get("code", "")
    if not code:
        raise BadRequest("the provider sent no code", code="sign_in_failed")
    try:
        answer = await identities.provider.exchange_code(code, str(verifier), _base_url(request) + CALLBACK_PATH)
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRejected("the provider sent no ID token", "sign_in_failed")
        who = await identities.sign_in(id_token, str(nonce))
    except (TokenRejected, NotPermitted) as e:
        log.warning("sign-in refused: %s (%s)", e.code, e)
        return _back_to_console(e.code, str(e))
    service = request.app[SERVICE]
    ttl = identities.settings.session_ttl_s
    secret, info = await service.tokens.create(
        sorted(who.scopes), name=who.name, expires_in_s=ttl, kind=KIND_CONSOLE, subject=who.subject
    )
    request[PRINCIPAL] = Principal(info.id, info.name, frozenset(info.scopes), KIND_CONSOLE, who.subject, who.email)
    response = _redirect(_safe_next(str(after)))
    response.del_cookie(LOGIN_COOKIE, path="/v1/auth/")
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(ttl),
        path="/",
        httponly=True,
        secure=_secure(request),
        samesite="Strict",
    )
    log.info("signed in: %s (%s) as %s, groups %s", who.name, who.subject, info.id, ",".join(who.groups))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    _limited(request)
    principal = await authenticate(request)
    request[PRINCIPAL] = principal
    service = request.app[SERVICE]
    if principal.kind == KIND_CONSOLE:
        await service.tokens.revoke(principal.token_id)
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def mount_signin_routes(app: web.Application, limiter: RateLimiter | None = None) -> None:
    app[RATE_LIMITER] = limiter or RateLimiter()
    app.router.add_get("/v1/auth/config", auth_config, name="auth_config")
    app.router.add_get("/v1/auth/login", login, name="auth_login")
    app.router.add_get(CALLBACK_PATH, callback, name="auth_callback")
    app.router.add_post("/v1/auth/logout", logout, name="auth_logout")


__all__ = ["LOGIN_COOKIE", "RATE_LIMITER", "mount_signin_routes"]
