"""Local stand-ins for SaaS APIs, driven in the tests by the real client libraries over HTTP:

* ``FakeWorkspace``: Google's OAuth token endpoint (it checks the service account's signed JWT, the
  delegated ``sub`` and the scope) and the Admin SDK Directory ``users.list`` (paged, ``fields``
  ignored), for google-api-python-client with ``client_options={"api_endpoint": …}``.
* ``FakeGitHub``: the REST endpoints the GitHub checks read (organisation, members with
  ``filter=2fa_disabled``, repositories, outside collaborators with permissions), paged with Link
  headers like GitHub, for PyGithub with ``base_url``.

Both run on 127.0.0.1 in a thread of their own (the clients are blocking) and count the requests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DIRECTORY_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"


class ThreadedServer:
    """An aiohttp application served on 127.0.0.1 from its own thread and event loop."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    def __enter__(self) -> ThreadedServer:
        ready = threading.Event()

        async def start() -> None:
            self._runner = web.AppRunner(self.app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        def serve() -> None:
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeWorkspace(ThreadedServer):
    """A Workspace customer: its users, its administrator, the service account allowed to act as them."""

    def __init__(self, admin: str, users: list[dict[str, Any]], *, page_size: int = 2) -> None:
        super().__init__()
        self.admin = admin
        self.users = users
        self.page_size = page_size
        self.tokens: dict[str, str] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = "auditor@couchpotato-test.iam.gserviceaccount.com"

    def service_account_file(self, folder: Path) -> Path:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "couchpotato-test",
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": self.email,
            "client_id": "1234567890",
            "token_uri": f"{self.url}/token",
        }
        path = folder / "service-account.json"
        path.write_text(json.dumps(info))
        return path

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_get("/admin/directory/v1/users", self._users)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        self.requests["token"] += 1
        form = await request.post()
        try:
            head, claims_b64, sig = str(form["assertion"]).split(".")
            claims = json.loads(_b64(claims_b64))
            self._key.public_key().verify(
                _b64(sig), f"{head}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            assert form["grant_type"] == JWT_BEARER and claims["iss"] == self.email
            assert float(claims["exp"]) > time.time() and DIRECTORY_SCOPE in claims["scope"].split()
        except Exception:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = "ya29." + secrets.token_urlsafe(16)
        self.tokens[token] = str(claims.get("sub") or claims["iss"])
        return web.json_response({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def _users(self, request: web.Request) -> web.Response:
        self.requests["users.list"] += 1
        principal = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "), "")
        if not principal:
            return _google_error(401, "Request had invalid authentication credentials.")
        if principal != self.admin:
            return _google_error(403, "Not Authorized to access this resource/api")
        if request.query.get("customer") != "my_customer":
            return _google_error(400, "Bad Request")
        start = int(request.query.get("pageToken") or 0)
        size = min(int(request.query.get("maxResults", 100)), self.page_size)
        body: dict[str, Any] = {"kind": "admin#directory#users", "users": self.users[start : start + size]}
        if start + size < len(self.users):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)


def _google_error(code: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "errors": [{"message": message}]}}, status=code
    )


class FakeGitHub(ThreadedServer):
    """One organisation: members (with or without 2FA), repositories and their outside collaborators."""

    def __init__(
        self,
        org: str,
        token: str,
        *,
        two_factor_required: bool | None,
        members: dict[str, bool],
        outside: dict[str, dict[str, str]],
        per_page: int = 2,
    ) -> None:
        super().__init__()
        self.org, self.token = org, token
        self.two_factor_required = two_factor_required  # None: the token is not an owner's
        self.members = members  # login → has 2FA
        self.outside = outside  # repository → {login: permission}
        self.per_page = per_page

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/orgs/{org}", self._org)
        app.router.add_get("/orgs/{org}/members", self._members)
        app.router.add_get("/orgs/{org}/repos", self._repos)
        app.router.add_get("/repos/{owner}/{repo}/collaborators", self._collaborators)
        return app

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header in (f"token {self.token}", f"Bearer {self.token}")

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        page = int(request.query.get("page", 1))
        per = min(int(request.query.get("per_page", 30)), self.per_page)
        chunk = items[(page - 1) * per : page * per]
        headers = {}
        if page * per < len(items):
            query = {**request.query, "page": str(page + 1)}
            nxt = request.url.with_query(query)
            headers["Link"] = f'<{nxt}>; rel="next"'
        return web.json_response(chunk, headers=headers)

    def _user(self, login: str, **extra: Any) -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 10**8,
            "type": "User",
            "url": f"{self.url}/users/{login}",
            **extra,
        }

    async def _org(self, request: web.Request) -> web.Response:
        self.requests["org"] += 1
        if not self._authorised(request):
            return web.json_response({"message": "Bad credentials"}, status=401)
        if request.match_info["org"] != self.org:
            return web.json_response({"message": "Not Found"}, status=404)
        body: dict[str, Any] = {"login": self.org, "id": 1, "url": f"{self.url}/orgs/{self.org}"}
        if self.two_factor_required is not None:
            body["two_factor_requirement_enabled"] = self.two_factor_required
        return web.json_response(body)

    async def _members(self, request: web.Request) -> web.Response:
        self.requests["members"] += 1
        logins = sorted(self.members)
        if request.query.get("filter") == "2fa_disabled":
            if self.two_factor_required is None:
                return web.json_response({"message": "Must be an organization owner"}, status=403)
            logins = [m for m in logins if not self.members[m]]
        return self._page(request, [self._user(m) for m in logins])

    async def _repos(self, request: web.Request) -> web.Response:
        self.requests["repos"] += 1
        repos = [
            {
                "id": i,
                "name": name,
                "full_name": f"{self.org}/{name}",
                "owner": self._user(self.org),
                "url": f"{self.url}/repos/{self.org}/{name}",
            }
            for i, name in enumerate(sorted(self.outside))
        ]
        return self._page(request, repos)

    async def _collaborators(self, request: web.Request) -> web.Response:
        self.requests["collaborators"] += 1
        if request.query.get("affiliation") != "outside":
            return web.json_response({"message": "only affiliation=outside here"}, status=422)
        users = self.outside.get(request.match_info["repo"], {})
        levels = ("pull", "triage", "push", "maintain", "admin")
        items = [
            self._user(login, permissions={lvl: levels.index(lvl) <= levels.index(perm) for lvl in levels})
            for login, perm in sorted(users.items())
        ]
        return self._page(request, items)


class FakeSlack(ThreadedServer):
    """A Slack workspace's Web API: ``auth.test`` and ``users.list`` (cursor-paged), bearer-token auth."""

    def __init__(self, token: str, members: list[dict[str, Any]], *, per_page: int = 2) -> None:
        super().__init__()
        self.token, self.members, self.per_page = token, members, per_page

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/auth.test", self._auth_test)
        app.router.add_route("*", "/api/users.list", self._users)
        return app

    def _ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.token}"

    async def _auth_test(self, request: web.Request) -> web.Response:
        self.requests["auth.test"] += 1
        if not self._ok(request):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "team": "Acme", "team_id": "T0ACME", "user_id": "U0ADMIN"})

    async def _users(self, request: web.Request) -> web.Response:
        self.requests["users.list"] += 1
        if not self._ok(request):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        form = {**request.query, **(await request.post())}
        start = int(str(form.get("cursor") or 0))
        chunk = self.members[start : start + self.per_page]
        more = start + self.per_page < len(self.members)
        meta = {"next_cursor": str(start + self.per_page) if more else ""}
        return web.json_response({"ok": True, "members": chunk, "response_metadata": meta})
