"""The Slack side of a run: one workspace through the Web API (slack_sdk), with a token (the
``slack_token`` setting, else ``SLACK_TOKEN``). Members are listed once per run.

Blocking: the runner calls it in a thread. ``calls`` counts the API requests made."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

DEFAULT_API_URL = "https://slack.com/api/"
PAGE_SIZE = 200


class SlackApi:
    """Cached, counted reads of one Slack workspace."""

    provider = "slack"

    def __init__(self, token: str, *, api_url: str = DEFAULT_API_URL) -> None:
        from slack_sdk import WebClient

        self.calls: Counter[str] = Counter()
        self._client = WebClient(token=token or None, base_url=api_url or DEFAULT_API_URL, timeout=30)
        self._lock = threading.Lock()
        self._members: list[dict[str, Any]] | None = None

    def close(self) -> None:
        return None  # slack_sdk opens a connection per request

    def team(self) -> str:
        """The workspace's domain (what findings name as the account)."""
        self.calls["auth.test"] += 1
        info = self._client.auth_test()
        return str(info.get("team_id") or info.get("team") or "unknown")

    def members(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._members is None:
                out: list[dict[str, Any]] = []
                cursor: str | None = None
                while True:
                    page = self._client.users_list(limit=PAGE_SIZE, cursor=cursor)
                    self.calls["users.list"] += 1
                    out += page.get("members", [])
                    cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                    if not cursor:
                        break
                self._members = out
            return list(self._members)


__all__ = ["DEFAULT_API_URL", "SlackApi"]
