"""A sliding-window rate limit per client address, for the sign-in endpoints.

Per process: behind a load balancer each API process counts its own requests, so the effective
limit is that many times higher; it bounds brute force and sign-in floods, not fair use.
"""

from __future__ import annotations

import math
import time
from collections import deque

from aiohttp import web

from .errors import ApiError


class TooManyRequests(ApiError):
    """429: this client sent too many sign-in requests; ``retry_after_s`` says when to try again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        return super().response({**(headers or {}), "Retry-After": str(max(1, math.ceil(self.retry_after_s)))})


class RateLimiter:
    """At most ``limit`` requests per ``window_s`` from one key (client address).

    Attributes:
        limit: requests allowed in a window.
        window_s: the window's length.
    """

    def __init__(self, limit: int = 20, window_s: float = 60.0, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, now: float | None = None) -> None:
        """Count one request from ``key``; raises TooManyRequests past the limit."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._forget(now)
            hits = self._hits[key] = deque()
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            retry = self.window_s - (now - hits[0])
            raise TooManyRequests(f"too many sign-in requests; try again in {retry:.0f} s", retry)
        hits.append(now)

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window_s]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            self._hits.clear()


__all__ = ["RateLimiter", "TooManyRequests"]
