"""A real katopotato service (in-process, SQLite, embedded workers) with some plugins loaded, and an
HTTP client for their routes: for the tests of plugins' routes and pages (vetting, auditing)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from katopotato.api.app import create_app
from katopotato.api.service import Service
from katopotato.jobs import JobStatus
from katopotato.plugin_host import load_plugins
from katopotato.settings import Settings

ADMIN_TOKEN = "kp_plugintests_" + "a" * 40


@dataclass
class Running:
    """The running service and an HTTP client."""

    service: Service
    base: str
    http: aiohttp.ClientSession
    token_ids: dict[str, str] = field(default_factory=dict)  # secret → token id

    async def token(self, name: str, *scopes: str) -> str:
        """A new API token's secret."""
        secret, info = await self.service.tokens.create(scopes, name=name)
        self.token_ids[secret] = info.id
        return secret

    async def call(self, method: str, path: str, token: str = ADMIN_TOKEN, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        async with self.http.request(method, f"{self.base}{path}", headers=headers, **kw) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, (await r.json()) if "json" in ctype else await r.text()

    async def run_job(self, kind: str, params: Mapping[str, Any], timeout_s: float = 60) -> Any:
        """Enqueue a job, wait for it on the embedded workers, return its result."""
        sched = self.service.scheduler
        job = await sched.enqueue(kind, dict(params))
        done = await sched.wait(job.id, timeout_s=timeout_s)
        assert done.status is JobStatus.SUCCEEDED, done.error
        return await sched.result(job.id)


@contextlib.asynccontextmanager
async def start_service(
    tmp_path: Path, plugins: list[str], plugin_settings: Mapping[str, Any] | None = None
) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path / "data", api_token=ADMIN_TOKEN, workers=1)
    registry = load_plugins(installed=False, extra=plugins, settings=dict(plugin_settings or {}))
    async with Service.open(settings, registry=registry) as service:
        runner = web.AppRunner(create_app(service), handle_signals=False, shutdown_timeout=2, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Running(service, f"http://127.0.0.1:{runner.addresses[0][1]}", http)
        finally:
            await runner.cleanup()
