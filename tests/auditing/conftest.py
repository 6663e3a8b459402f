"""Fixtures of the auditing tests: moto in server mode on a free loopback port (boto3 reaches it
through ``AWS_ENDPOINT_URL``, as a user would), reset before each test; Slack-webhook, PagerDuty
Events v2 and Pushgateway receivers (aiohttp) and an SMTP server (aiosmtpd) on loopback that keep
what they receive."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiohttp import web

REGION = "us-east-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server per test process (AWS-managed IAM policies loaded, as in a real account)."""
    from moto.server import ThreadedMotoServer

    before = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # read by moto whenever it (re)creates IAM
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if before is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = before


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh moto account, and boto3's standard environment pointing at it."""
    req = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=30).close()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_url


@dataclass
class Receiver:
    """An HTTP server on loopback recording every request body; ``fail`` makes it answer 500."""

    url: str = ""
    bodies: list[Any] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    fail: bool = False

    def json_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An aiohttp server in its own thread (so blocking callers and other event loops reach it)."""
    rec = Receiver()
    port = free_port()
    rec.url = f"http://127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def handle(request: web.Request) -> web.Response:
        rec.paths.append(f"{request.method} {request.path}")
        rec.bodies.append(await request.read())
        if rec.fail:
            return web.Response(status=500, text="receiver down")
        return web.json_response({"status": "success", "message": "Event processed"}, status=202)

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runner_box.append(runner)
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield rec
    finally:
        asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Inbox:
    """What the SMTP server received: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(data)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    from aiosmtpd.controller import Controller

    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
