"""A local stand-in of Twilio's Messages API (``POST /2010-04-01/Accounts/{sid}/Messages.json``),
driven by the real ``twilio`` client in the tests and the benchmark.

It checks HTTP basic auth (account SID and auth token), answers like Twilio (201 and a message
resource; 400 with ``code`` 21610 for an unsubscribed number, 21211 for an invalid one), can be told
to fail the next requests (429, 500, 503) and, on demand, posts status callbacks signed the way
Twilio signs them (X-Twilio-Signature: HMAC-SHA1 of URL + sorted parameters, with the auth token).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "standin-auth-token-0123456789abcdef"
SERVICE_SID = "MG" + "0" * 31 + "2"


@dataclass
class Standin:
    """State of the stand-in: what it received, what it will answer."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # HTTP statuses for the next requests
    unsubscribed: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    requests: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != expected or request.match_info["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_next:
            status = self.fail_next.pop(0)
            return _error(status, 20429 if status == 429 else 20500, "Too Many Requests" if status == 429 else "oops")
        form = {k: str(v) for k, v in (await request.post()).items()}
        to = form.get("To", "")
        if not to.startswith("+"):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.unsubscribed:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not form.get("Body") or not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(400, 21602, "Message body and a sender are required")
        sid = f"SM{next(self._ids):032x}"
        self.received.append({**form, "Sid": sid})
        body = {
            "sid": sid, "account_sid": self.account_sid, "to": to, "from": form.get("From"), "body": form["Body"],
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1", "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }  # fmt: skip
        return web.json_response(body, status=201)

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    async def callback(self, http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> int:
        """POST a webhook to ``url`` signed as Twilio signs it; returns the HTTP status."""
        headers = {"X-Twilio-Signature": self.sign(url, params)}
        async with http.post(url, data=params, headers=headers) as r:
            await r.read()
            return r.status


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


@contextlib.asynccontextmanager
async def run_standin() -> AsyncIterator[Standin]:
    state = Standin()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", state.messages)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


def settings_for(standin: Standin, **extra: Any) -> dict[str, Any]:
    """The sms plugin's settings pointing at the stand-in."""
    return {
        "account_sid": standin.account_sid,
        "auth_token": standin.auth_token,
        "api_url": standin.url,
        "messaging_service_sid": SERVICE_SID,
        **extra,
    }
