"""A local OpenID Connect issuer for the tests: a real HTTP server (aiohttp) that publishes a
discovery document and a JWKS, signs real RS256 JWTs with RSA keys made by ``cryptography``, and
runs the authorization code flow with PKCE (a sign-in page listing its users, a token endpoint
that checks the code verifier and the client's secret).

A real provider (Google, Cognito, Keycloak, Okta) cannot be reached from the tests; this one is
driven through the service's real client code over HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "katopotato-console"
CLIENT_SECRET = "local-issuer-secret"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk


@dataclass
class User:
    sub: str
    email: str
    name: str
    groups: list[str] = field(default_factory=list)
    hd: str | None = None


@dataclass
class LocalIssuer:
    """The issuer's state; ``base`` is set once it serves."""

    users: dict[str, User] = field(default_factory=dict)
    audience: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    base: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    jwks_requests: int = 0
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.add_key("key-1")

    def add_key(self, kid: str, *, publish: bool = True) -> str:
        self.keys[kid] = new_key()
        if publish:
            self.published.append(kid)
        return kid

    @property
    def issuer(self) -> str:
        return self.base

    def mint(
        self,
        sub: str = "user-1",
        *,
        kid: str = "key-1",
        key: rsa.RSAPrivateKey | None = None,
        ttl_s: float = 300,
        iat_offset_s: float = 0,
        **overrides: Any,
    ) -> str:
        """A signed JWT; ``overrides`` replace or add claims (``None`` removes one)."""
        now = int(time.time() + iat_offset_s)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": int(now + ttl_s),
        }
        user = next((u for u in self.users.values() if u.sub == sub), None)
        if user is not None:
            claims.update(email=user.email, name=user.name, groups=list(user.groups))
            if user.hd:
                claims["hd"] = user.hd
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    # --- HTTP ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/authorize", self._approve)
        app.router.add_post("/token", self._token)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": f"{self.base}/jwks",
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response({"keys": [public_jwk(self.keys[kid], kid) for kid in self.published]})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or q.get("client_id") != CLIENT_ID:
            return web.Response(status=400, text="bad authorization request")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE (S256) is required")
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
        )
        buttons = "".join(
            f'<button name="login" value="{html.escape(u.sub)}">{html.escape(u.name)}</button>'
            for u in self.users.values()
        )
        page = f"<!doctype html><title>Local issuer</title><h1>Sign in</h1><form method=post>{hidden}{buttons}</form>"
        return web.Response(text=page, content_type="text/html")

    async def _approve(self, request: web.Request) -> web.Response:
        form = await request.post()
        sub = str(form.get("login", ""))
        if sub not in {u.sub for u in self.users.values()}:
            return web.Response(status=400, text="unknown user")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "sub": sub,
            "challenge": str(form["code_challenge"]),
            "redirect_uri": str(form["redirect_uri"]),
            "nonce": str(form.get("nonce", "")),
        }
        target = f"{form['redirect_uri']}?{urlencode({'code': code, 'state': str(form.get('state', ''))})}"
        raise web.HTTPFound(target)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{self.client_secret}".encode()).decode()
        if auth != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code", "")), None)
        if grant is None or form.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if digest != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        extra = {"nonce": grant["nonce"]} if grant["nonce"] else {}
        id_token = self.mint(grant["sub"], **extra)
        return web.json_response({"id_token": id_token, "access_token": id_token, "token_type": "Bearer"})


@contextlib.asynccontextmanager
async def serve_issuer(issuer: LocalIssuer) -> AsyncIterator[LocalIssuer]:
    """Serve ``issuer`` on a free port of 127.0.0.1 (plain http: a loopback issuer)."""
    runner = web.AppRunner(issuer.app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    issuer.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield issuer
    finally:
        await runner.cleanup()
