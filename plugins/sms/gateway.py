"""Sending through Twilio with the real ``twilio`` client (``create_async`` over aiohttp).

The client's REST base URL comes from the settings (``api_url``), so tests and benchmarks drive the
real library against a local stand-in of the Messages API. Each send waits for a slot of the
per-account and the per-number rate limits, and is retried with exponential backoff and jitter on
429 and 5xx answers and when no connection could be made; a request that may have reached Twilio
(a timeout, a dropped connection) is not repeated, so no voter gets the message twice; any other
refusal (a 4xx with a Twilio error code: 21610 unsubscribed, 21211 invalid number …) is final.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from .constants import RETRY_BASE_S, RETRY_MAX_S
from .errors import GatewayError
from .settings import SmsSettings


class AiohttpTransport(AsyncHttpClient):  # type: ignore[misc]
    """The twilio client's HTTP layer on one pooled aiohttp session. twilio's own
    ``AsyncTwilioHttpClient`` passes ``aiohttp.BasicAuth``, deprecated in the aiohttp this project
    pins; this one sends the ``Authorization`` header itself (``aiohttp.encode_basic_auth``)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        super().__init__(logging.getLogger("plugins.sms.twilio"), True, timeout_s)
        self.session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (twilio's signature; the session's timeout applies)
        allow_redirects: bool = False,
    ) -> Response:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        async with self.session.request(
            method.upper(), uri, params=cast(Any, params), data=data, headers=hdrs, allow_redirects=allow_redirects
        ) as r:
            return Response(r.status, await r.text(), r.headers)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


class RateLimiter:
    """Spaces acquisitions at least ``1/rate`` seconds apart (a leaky bucket without burst)."""

    def __init__(self, rate_per_s: float) -> None:
        self.interval_s = 1.0 / rate_per_s
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True)
class Sent:
    """What Twilio answered: the message's SID and its first status."""

    sid: str
    status: str


def backoff_s(attempt: int, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_MAX_S) -> float:
    """Delay before retry ``attempt`` (1, 2, …): exponential, full jitter in its upper half, capped."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


def retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


class TwilioGateway:
    """One Twilio client (and its connection pool) per event loop; ``close()`` releases it."""

    def __init__(self, settings: SmsSettings, *, base_backoff_s: float = RETRY_BASE_S) -> None:
        self.settings = settings
        self.base_backoff_s = base_backoff_s
        self.account = RateLimiter(settings.per_account_rate_per_s)
        self.per_number: dict[str, RateLimiter] = {}
        self._http: AiohttpTransport | None = None
        self._client: Client | None = None
        self.requests = 0  # HTTP requests made (tries), for the benchmarks

    def _ensure(self) -> Client:
        if self._client is None:
            settings = self.settings
            if not settings.account_sid or not settings.auth_token:
                raise GatewayError("Twilio is not configured: set COUCHPOTATO_TWILIO_ACCOUNT_SID and _AUTH_TOKEN")
            if not settings.messaging_service_sid and not settings.numbers:
                raise GatewayError("set COUCHPOTATO_TWILIO_MESSAGING_SERVICE_SID or COUCHPOTATO_TWILIO_FROM_NUMBERS")
            self._http = AiohttpTransport()
            client = Client(self.settings.account_sid, self.settings.auth_token, http_client=self._http)
            client.api.base_url = self.settings.api_url.rstrip("/")
            self._client = client
        return self._client

    def from_number(self, to: str) -> str | None:
        """The pool number of a contact (stable: a contact always hears from the same number)."""
        pool = self.settings.numbers
        if self.settings.messaging_service_sid or not pool:
            return None
        return pool[zlib.crc32(to.encode()) % len(pool)]

    async def send(self, to: str, body: str, *, validity_period_s: int, status_callback: str = "") -> Sent:
        client = self._ensure()
        sender = self.from_number(to)
        kwargs: dict[str, Any] = {"to": to, "body": body, "validity_period": validity_period_s}
        if self.settings.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            kwargs["from_"] = sender
        if status_callback:
            kwargs["status_callback"] = status_callback
        tries = self.settings.max_send_tries
        for attempt in range(1, tries + 1):
            await self.account.acquire()
            if sender is not None:
                await self.per_number.setdefault(sender, RateLimiter(self.settings.per_number_rate_per_s)).acquire()
            self.requests += 1
            try:
                msg = await client.messages.create_async(**kwargs)
                return Sent(str(msg.sid), str(msg.status or "queued"))
            except TwilioRestException as e:
                if not retryable(e.status) or attempt == tries:
                    raise GatewayError(
                        f"Twilio refused the message ({e.status}, code {e.code}): {e.msg}",
                        twilio_code=e.code if isinstance(e.code, int) else None,
                        http_status=e.status,
                    ) from e
            except aiohttp.ClientConnectorError as e:  # no connection: nothing was sent, try again
                if attempt == tries:
                    raise GatewayError(f"Twilio unreachable after {tries} tries: {e}") from e
            except (aiohttp.ClientError, TimeoutError) as e:  # the request may have reached Twilio: no retry
                raise GatewayError(f"no answer from Twilio ({type(e).__name__}): the message may have been sent",
                                   maybe_sent=True) from e  # fmt: skip
            await asyncio.sleep(backoff_s(attempt, self.base_backoff_s))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None


__all__ = ["AiohttpTransport", "RateLimiter", "Sent", "TwilioGateway", "backoff_s", "retryable"]
