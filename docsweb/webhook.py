"""The webhook sink: each event (or a batch of them) POSTed as signed JSON.

One event per request (``batch_max_events`` = 1)::

    {"v": 1, "session_id": "…", "event_id": "…", "event": {"type": "segment", "seq": 3, …}}

or batches (``batch_max_events`` > 1)::

    {"v": 1, "session_id": "…", "events": [{"event_id": "…", "event": {…}}, …]}

The ``event`` objects are the transcript's wire format (``couchpotato.records``). ``event_id`` is
the event's stream id: stable across retries and restarts, so a receiver drops what it has seen.
Delivery is at least once: a request whose answer was lost is sent again.

Headers: ``X-CouchPotato-Timestamp`` (Unix seconds), ``X-CouchPotato-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the sink's secret (``verify_signature`` checks it,
and refuses timestamps older than five minutes), ``X-CouchPotato-Event-Id`` (the last event's id).

Any 2xx is success. Anything else (a refused connection, a timeout, a 3xx, 4xx or 5xx) is retried
with backoff, honouring ``Retry-After``; after ``retry_for_s`` the sink is reported failing and
keeps retrying, so a receiver that comes back gets every event it missed, in order. Redirects are
not followed, and the URL guard checks every address connected to (no private or metadata
addresses unless allowlisted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from couchpotato.errors import CouchPotatoError
from couchpotato.urlguard import UrlGuard

from .base import BatchPolicy, Item, SinkContext
from .constants import (
    WEBHOOK_EVENT_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_TOLERANCE_S,
    WEBHOOK_TIMESTAMP_HEADER,
)
from .errors import SinkConfigError, SinkRetry
from .gdoc import retry_after_s
from .specs import WebhookSpec

USER_AGENT = "CouchPotato-DocsWeb/1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-CouchPotato-Signature`` value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float = WEBHOOK_SIGNATURE_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """For receivers: the signature is right and the timestamp recent."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def redact(url: str) -> str:
    """A URL fit for logs and the API: no user info, no query."""
    p = urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{p.scheme}://{host}{f':{p.port}' if p.port else ''}{p.path}"


class GuardedResolver(AbstractResolver):
    """Resolves through the URL guard, so the connection goes to an address it checked."""

    def __init__(self, guard: UrlGuard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addrs = await self.guard.resolve(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addrs
        ]

    async def close(self) -> None:
        return None


class WebhookSink:
    """POSTs a session's events to a URL (see the module docstring)."""

    type = "webhook"

    def __init__(self, spec: WebhookSpec, *, session_id: str, guard: UrlGuard) -> None:
        if not spec.id:
            raise SinkConfigError("the sink spec has no id (use specs.with_ids)")
        self.id = spec.id
        self.spec = spec
        self.session_id = session_id
        self.guard = guard
        self.policy = BatchPolicy(spec.batch_interval_s, spec.batch_max_events, spec.retry_for_s, spec.max_backoff_s)
        self.posts = 0
        self._http: aiohttp.ClientSession | None = None

    @property
    def target(self) -> str:
        return redact(self.spec.url)

    async def open(self, ctx: SinkContext) -> str | None:
        if self._http is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.guard))
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.spec.timeout_s),
                headers={"User-Agent": USER_AGENT},
            )
        return ctx.stored_cursor

    def body(self, items: Sequence[Item]) -> bytes:
        doc: dict[str, Any]
        if self.spec.batch_max_events == 1 and len(items) == 1:
            doc = {
                "v": 1,
                "session_id": self.session_id,
                "event_id": items[0].event_id,
                "event": items[0].event.to_dict(),
            }
        else:
            doc = {
                "v": 1,
                "session_id": self.session_id,
                "events": [{"event_id": i.event_id, "event": i.event.to_dict()} for i in items],
            }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    async def ready(self) -> None:
        return None

    async def deliver(self, batch: Sequence[Item]) -> None:
        assert self._http is not None, "open() first"
        items = [i for i in batch if i.event.type in self.spec.events]
        if not items:
            return
        body = self.body(items)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_TIMESTAMP_HEADER: timestamp,
            WEBHOOK_SIGNATURE_HEADER: sign(self.spec.secret.get_secret_value(), timestamp, body),
            WEBHOOK_EVENT_ID_HEADER: items[-1].event_id,
        }
        where = redact(self.spec.url)
        self.posts += 1
        try:
            await self.guard.check_url(self.spec.url)  # literal addresses never reach the resolver
            async with self._http.post(self.spec.url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, TimeoutError, CouchPotatoError) as e:
            raise SinkRetry(f"cannot POST to {where}: {e or type(e).__name__}") from e
        if 200 <= status < 300:
            return
        raise SinkRetry(f"{where} answered {status}", defer_s=retry_after_s(retry_after))

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()


__all__ = ["GuardedResolver", "WebhookSink", "redact", "sign", "verify_signature"]
