"""A real katopotato service (in-process, SQLite) with the sms plugin pointed at the Twilio stand-in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from katopotato.api.app import create_app
from katopotato.api.service import Service
from katopotato.plugin_host import load_plugins
from katopotato.settings import Settings

from .standin import Standin, run_standin, settings_for

ADMIN_TOKEN = "kp_smstests_" + "a" * 43
PUBLIC_URL = "https://pencil.example.org"


@dataclass
class Sms:
    """The running service, its stand-in, and an HTTP client."""

    service: Service
    base: str
    http: aiohttp.ClientSession
    standin: Standin
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base}/v1/plugins/sms/{path.lstrip('/')}"

    async def token(self, name: str, scopes: tuple[str, ...] = ("sms:text", "sms:admin")) -> tuple[str, str]:
        """A new token: (secret, token id)."""
        secret, info = await self.service.tokens.create(scopes, name=name)
        return secret, info.id

    async def call(self, method: str, path: str, token: str = ADMIN_TOKEN, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        async with self.http.request(method, self.url(path), headers=headers, **kw) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, (await r.json()) if "json" in ctype else await r.text()

    async def webhook(self, path: str, params: dict[str, str], *, sign_url: str | None = None, **kw: Any) -> int:
        """POST a Twilio webhook signed over the public URL (or ``sign_url``)."""
        signed = sign_url or f"{PUBLIC_URL}/v1/plugins/sms/{path}"
        headers = {"X-Twilio-Signature": self.standin.sign(signed, params), **kw.pop("headers", {})}
        async with self.http.post(self.url(path), data=params, headers=headers) as r:
            await r.read()
            return r.status


@contextlib.asynccontextmanager
async def start_sms(tmp_path: Path, standin: Standin, database_url: str = "", **sms: Any) -> AsyncIterator[Sms]:
    settings = Settings(
        data_dir=tmp_path / "data", api_token=ADMIN_TOKEN, public_url=PUBLIC_URL, database_url=database_url
    )
    plugin_settings = {"sms": {**settings_for(standin), "public_url": PUBLIC_URL, **sms}}
    registry = load_plugins(installed=False, extra=["plugins.sms:plugin"], settings=plugin_settings)
    async with Service.open(settings, registry=registry) as service:
        app = create_app(service)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Sms(service, f"http://127.0.0.1:{runner.addresses[0][1]}", http, standin)
        finally:
            await runner.cleanup()


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    async with run_standin() as s:
        yield s


@pytest.fixture
async def sms(tmp_path: Path, standin: Standin) -> AsyncIterator[Sms]:
    async with start_sms(tmp_path, standin) as s:
        yield s
