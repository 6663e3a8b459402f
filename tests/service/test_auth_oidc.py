"""Turbotots through the real service: bearer JWTs of a local OIDC issuer (real RS256 signatures,
discovery and JWKS over HTTP) beside API tokens, each refusal's status and code, the console's
sign-in (authorization code + PKCE, cookie, CSRF, sign-out), the first-login group, rate limits,
expiring API tokens and the audit line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from katopotato.errors import ConfigError
from katopotato.oidc import OidcSettings, parse_group_scopes
from katopotato.plugin import Plugin, principal_of
from katopotato.plugin_host import PluginRegistry, load_plugins
from tests.oidc_issuer import CLIENT_ID, CLIENT_SECRET, LocalIssuer, User, new_key, serve_issuer

from .conftest import Running

Factory = Callable[..., contextlib.AbstractAsyncContextManager[Running]]
GROUP_SCOPES = "transcribers=sessions:read,sessions:write;admins=*;texters=jobs:read"
USERS = {
    "ada": User("ada", "ada@example.org", "Ada Transcriber", ["transcribers"]),
    "root": User("root", "root@example.org", "Root Admin", ["admins"]),
    "newbie": User("newbie", "newbie@example.org", "New Texter", []),
}


def texting_plugin() -> Plugin:
    """A plugin that declares a scope and a route that needs it (as the SMS plugin's texting)."""
    p = Plugin("texting", "0.1", scopes={"texting:send": "send texts"})

    @p.routes.get("/queue")
    @p.requires("texting:send")
    async def queue(request: web.Request) -> web.StreamResponse:
        who = principal_of(request)
        assert who is not None
        return web.json_response({"for": who.subject or who.token_id, "email": who.email})

    @p.routes.get("/about")
    async def about(request: web.Request) -> web.StreamResponse:
        return web.json_response({"plugin": "texting"})

    return p


def registry() -> PluginRegistry:
    found = load_plugins(installed=False)
    found.add(texting_plugin())
    return found


@pytest.fixture
async def issuer() -> AsyncIterator[LocalIssuer]:
    async with serve_issuer(LocalIssuer(users=dict(USERS))) as served:
        yield served


def oidc_settings(issuer: LocalIssuer, **changes: Any) -> OidcSettings:
    base: dict[str, Any] = {
        "issuer": issuer.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "group_scopes": parse_group_scopes(GROUP_SCOPES),
    }
    base.update(changes)
    return OidcSettings(**base)


async def call(r: Running, method: str, path: str, token: str | None = None, **kw: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with r.http.request(method, r.url(path), headers=headers, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def test_bearer_jwts_beside_api_tokens(make_service: Factory, issuer: LocalIssuer) -> None:
    async with make_service(oidc=oidc_settings(issuer)) as r:
        ada = issuer.mint("ada")
        status, me = await call(r, "GET", "/v1/me", ada)
        assert status == 200, me
        assert (me["kind"], me["subject"], me["email"]) == ("oidc", "ada", "ada@example.org")
        assert me["scopes"] == ["sessions:read", "sessions:write"] and me["csrf_token"] is None
        assert (await call(r, "GET", "/v1/sessions", ada))[0] == 200
        status, body = await call(r, "GET", "/v1/jobs", ada)
        assert (status, body["error"]["code"]) == (403, "forbidden"), "no default permissions"
        assert (await call(r, "GET", "/v1/tokens", ada))[0] == 403
        assert (await call(r, "GET", "/v1/tokens", issuer.mint("root")))[0] == 200
        # the API tokens keep working as before
        assert (await call(r, "GET", "/v1/tokens", r.token))[0] == 200
        assert (await call(r, "GET", "/v1/whoami", "kp_wrong"))[1]["error"]["code"] == "unauthorized"

        refused = {
            "token_expired": issuer.mint("ada", iat_offset_s=-7200, ttl_s=600),
            "token_not_yet_valid": issuer.mint("ada", iat_offset_s=3600),
            "wrong_audience": issuer.mint("ada", aud="another-api"),
            "wrong_issuer": issuer.mint("ada", iss="https://idp.example.org"),
            "bad_signature": issuer.mint("ada", key=new_key()),
            "unknown_key": issuer.mint("ada", kid="rotated-away", key=new_key()),
        }
        for code, token in refused.items():
            async with r.http.get(r.url("/v1/sessions"), headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
                assert (resp.status, body["error"]["code"]) == (401, code), body
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        status, body = await call(r, "GET", "/v1/sessions", issuer.mint("stranger", groups=["visitors"]))
        assert (status, body["error"]["code"]) == (403, "no_role")


async def test_plugins_declare_scopes_their_routes_need(make_service: Factory, issuer: LocalIssuer) -> None:
    groups = parse_group_scopes(GROUP_SCOPES.replace("texters=jobs:read", "texters=texting:send"))
    async with make_service(registry=registry(), oidc=oidc_settings(issuer, group_scopes=groups)) as r:
        texter = issuer.mint("t", groups=["texters"], email="t@example.org")
        status, body = await call(r, "GET", "/v1/plugins/texting/queue", texter)
        assert (status, body) == (200, {"for": "t", "email": "t@example.org"})
        status, body = await call(r, "GET", "/v1/plugins/texting/queue", issuer.mint("ada"))
        assert (status, body["error"]["code"]) == (403, "forbidden")
        reader, _ = await r.service.tokens.create(["jobs:read"])
        assert (await call(r, "GET", "/v1/plugins/texting/queue", reader))[0] == 403, "jobs:read is not texting:send"
        assert (await call(r, "GET", "/v1/plugins/texting/about", reader))[0] == 200, "undeclared: jobs:read"
        sender, info = await r.service.tokens.create(["texting:send"], name="sms gateway")
        assert info.scopes == ("texting:send",)
        assert (await call(r, "GET", "/v1/plugins/texting/queue", sender))[0] == 200
        plugins = (await call(r, "GET", "/v1/plugins", r.token))[1]["plugins"]
        assert next(p for p in plugins if p["name"] == "texting")["scopes"] == {"texting:send": "send texts"}
    with pytest.raises(ConfigError, match="unknown scopes texting:send"):
        async with make_service(oidc=oidc_settings(issuer, group_scopes=groups)):
            pass


async def test_api_tokens_may_expire(running: Running) -> None:
    body = {"scopes": ["search"], "expires_in_s": 60}
    status, made = await call(running, "POST", "/v1/tokens", running.token, json=body)
    assert status == 201 and made["expires_at"] == pytest.approx(made["created_at"] + 60)
    assert (await call(running, "GET", "/v1/whoami", made["token"]))[0] == 200
    status, _ = await call(running, "POST", "/v1/tokens", running.token, json={"scopes": ["search"], "expires_in_s": 5})
    assert status == 400
    short, _ = await running.service.tokens.create(["search"], name="short", expires_in_s=0.5)
    assert (await call(running, "GET", "/v1/whoami", short))[0] == 200
    await asyncio.sleep(0.7)
    assert (await call(running, "GET", "/v1/whoami", short))[0] == 401, "expired, even while cached"


@contextlib.asynccontextmanager
async def browser_like(r: Running) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield http


async def sign_in(
    r: Running, http: aiohttp.ClientSession, login: str, then: str = "/#/jobs"
) -> aiohttp.ClientResponse:
    """The code flow as a browser follows it; returns the service's answer to the callback."""
    async with http.get(r.url("/v1/auth/login"), params={"next": then}, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        to_issuer = resp.headers["Location"]
    query = parse_qs(urlsplit(to_issuer).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [r.url("/v1/auth/callback")] and query["client_id"] == [CLIENT_ID]
    form = {k: v[0] for k, v in query.items()} | {"login": login}
    async with http.post(to_issuer.split("?")[0], data=form, allow_redirects=False) as resp:
        assert resp.status == 302
        back = resp.headers["Location"]
    assert back.startswith(r.url("/v1/auth/callback?"))
    resp = await http.get(back, allow_redirects=False)
    resp.release()
    return resp


async def test_console_sign_in_cookie_csrf_and_sign_out(
    make_service: Factory, issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_service(oidc=oidc_settings(issuer)) as r, browser_like(r) as http:
        resp = await sign_in(r, http, "ada")
        assert resp.status == 302 and resp.headers["Location"] == "/#/jobs"
        cookie = next(v for k, v in resp.headers.items() if k == "Set-Cookie" and v.startswith("kp_session="))
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie, "plain http on a loopback address (a developer's machine)"
        async with http.get(r.url("/v1/me")) as me_resp:
            me = await me_resp.json()
        assert me_resp.status == 200, me
        assert (me["kind"], me["subject"], me["name"]) == ("console", "ada", "Ada Transcriber")
        assert me["scopes"] == ["sessions:read", "sessions:write"] and me["csrf_token"]
        async with http.get(r.url("/v1/sessions")) as listed:
            assert listed.status == 200
        # a state-changing request with the cookie needs the CSRF token
        async with http.delete(r.url("/v1/sessions/nosuchsession")) as refused:
            assert (refused.status, (await refused.json())["error"]["code"]) == (403, "csrf_failed")
        async with http.delete(r.url("/v1/sessions/nosuchsession"), headers={"X-CSRF-Token": "x" * 64}) as refused:
            assert (refused.status, (await refused.json())["error"]["code"]) == (403, "csrf_failed")
        caplog.set_level(logging.INFO, logger="katopotato.audit")
        headers = {"X-CSRF-Token": me["csrf_token"]}
        async with http.delete(r.url("/v1/sessions/nosuchsession"), headers=headers) as passed:
            assert (passed.status, (await passed.json())["error"]["code"]) == (404, "session_not_found")
        audit = [rec.audit for rec in caplog.records if rec.name == "katopotato.audit"]  # type: ignore[attr-defined]
        expected = {"who": me["token_id"], "subject": "ada", "kind": "console", "status": 404, "method": "DELETE"}
        assert expected.items() <= audit[-1].items(), audit
        made = (await call(r, "POST", "/v1/tokens", issuer.mint("root"), json={"scopes": ["search"]}))[1]
        last = [rec.audit for rec in caplog.records if rec.name == "katopotato.audit"][-1]  # type: ignore[attr-defined]
        assert (last["who"], last["kind"], last["status"]) == ("oidc:root", "oidc", 201)
        assert last["created"] == f"/v1/tokens/{made['id']}", "who made which token"
        # the sign-in is a console token admins can see
        tokens = (await call(r, "GET", "/v1/tokens", r.token))[1]["tokens"]
        mine = next(t for t in tokens if t["id"] == me["token_id"])
        assert mine["kind"] == "console" and mine["subject"] == "ada" and mine["expires_at"] > mine["created_at"]
        async with http.post(r.url("/v1/auth/logout"), headers=headers) as out:
            assert out.status == 204
        async with http.get(r.url("/v1/me")) as after:
            assert after.status == 401
        # the old cookie, replayed, is refused: signing out revoked it
        r.service.tokens._cache.clear()
        replay = {"Cookie": cookie.split(";")[0]}
        async with r.http.get(r.url("/v1/me"), headers=replay) as after:
            assert (after.status, (await after.json())["error"]["code"]) == (401, "session_expired")


async def test_first_login_group_and_refused_sign_ins(make_service: Factory, issuer: LocalIssuer) -> None:
    async with make_service(oidc=oidc_settings(issuer)) as r, browser_like(r) as http:
        resp = await sign_in(r, http, "newbie")
        assert resp.status == 302 and resp.headers["Location"].startswith("/#/signin?error=no_role")
        assert not any(c.key == "kp_session" for c in http.cookie_jar)
    async with make_service(oidc=oidc_settings(issuer, first_login_group="texters")) as r, browser_like(r) as http:
        before = await call(r, "GET", "/v1/me", issuer.mint("newbie"))
        assert before[0] == 403, "no group yet"
        resp = await sign_in(r, http, "newbie")
        assert resp.headers["Location"] == "/#/jobs"
        async with http.get(r.url("/v1/me")) as me_resp:
            assert (await me_resp.json())["scopes"] == ["jobs:read"]
        users = await r.service.identities.users()  # type: ignore[union-attr]
        assert [(u.subject, u.assigned_groups) for u in users] == [("newbie", ("texters",))]
        # the assigned group counts for the user's bearer JWTs too
        assert (await call(r, "GET", "/v1/me", issuer.mint("newbie")))[1]["scopes"] == ["jobs:read"]
        # an admin gives them another group instead; a group the map does not know is refused
        uid = users[0].id
        body = {"assigned_groups": ["transcribers"]}
        assert (await call(r, "PUT", f"/v1/users/{uid}", issuer.mint("ada"), json=body))[0] == 403
        status, changed = await call(r, "PUT", f"/v1/users/{uid}", r.token, json=body)
        assert status == 200 and changed["assigned_groups"] == ["transcribers"]
        me = (await call(r, "GET", "/v1/me", issuer.mint("newbie")))[1]
        assert me["scopes"] == ["sessions:read", "sessions:write"]
        status, err = await call(r, "PUT", f"/v1/users/{uid}", r.token, json={"assigned_groups": ["wizards"]})
        assert (status, err["error"]["code"]) == (400, "invalid_request") and "wizards" in err["error"]["message"]
        status, err = await call(r, "PUT", "/v1/users/nobody", r.token, json=body)
        assert (status, err["error"]["code"]) == (404, "user_not_found")
        listed = (await call(r, "GET", "/v1/users", r.token))[1]["users"]
        assert [(u["subject"], u["email"], u["assigned_groups"]) for u in listed] == [
            ("newbie", "newbie@example.org", ["transcribers"])
        ]
        # where to go after signing in is a path of this origin, never another site
        for elsewhere in ("//evil.example.org/phish", "/\t/evil.example.org", "https://evil.example.org/"):
            again = await sign_in(r, http, "newbie", then=elsewhere)
            assert (again.status, again.headers["Location"]) == (302, "/"), elsewhere
        # a callback whose state is not this browser's is refused
        async with http.get(r.url("/v1/auth/login"), allow_redirects=False) as started:
            assert started.status == 302
        async with http.get(r.url("/v1/auth/callback?code=x&state=forged"), allow_redirects=False) as forged:
            assert (forged.status, (await forged.json())["error"]["code"]) == (400, "sign_in_failed")


async def test_sign_in_endpoints_are_rate_limited(make_service: Factory, issuer: LocalIssuer) -> None:
    async with make_service(oidc=oidc_settings(issuer), public_url="https://console.example.org") as r:
        statuses = []
        for _ in range(25):
            async with r.http.get(r.url("/v1/auth/login"), allow_redirects=False) as resp:
                statuses.append(resp.status)
                if resp.status == 302:
                    assert "Secure" in resp.headers["Set-Cookie"], "https behind a proxy: Secure cookies"
                    callback = "redirect_uri=https%3A%2F%2Fconsole.example.org%2Fv1%2Fauth%2Fcallback"
                    assert callback in resp.headers["Location"]
                else:
                    assert int(resp.headers["Retry-After"]) >= 1
                    assert (await resp.json())["error"]["code"] == "too_many_requests"
        assert statuses.count(302) == 20 and statuses[20:] == [429] * 5


async def test_without_oidc_nothing_changes(running: Running, issuer: LocalIssuer) -> None:
    assert (await call(running, "GET", "/v1/auth/config"))[1] == {"oidc": False, "login_url": "/v1/auth/login"}
    status, body = await call(running, "GET", "/v1/auth/login")
    assert (status, body["error"]["code"]) == (404, "oidc_not_configured")
    status, body = await call(running, "GET", "/v1/me", issuer.mint("root"))
    assert (status, body["error"]["code"]) == (401, "unauthorized"), "a JWT means nothing without an issuer"
    assert re.fullmatch(r"[0-9a-f]{12}|env", (await call(running, "GET", "/v1/me", running.token))[1]["token_id"])
