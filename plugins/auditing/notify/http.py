"""One JSON POST with a timeout; a refusal or a non-2xx answer is a ``NotifyError`` (one line)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..constants import HTTP_TIMEOUT_S
from ..errors import NotifyError


async def post_json(url: str, body: dict[str, Any], *, what: str, timeout_s: float = HTTP_TIMEOUT_S) -> str:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(url, json=body) as resp,
        ):
            text = await resp.text()
            if resp.status >= 300:
                raise NotifyError(f"{what} answered {resp.status}: {' '.join(text.split())[:200]}")
            return text
    except (aiohttp.ClientError, TimeoutError) as e:
        raise NotifyError(f"{what} unreachable: {type(e).__name__}: {' '.join(str(e).split())}") from e


__all__ = ["post_json"]
