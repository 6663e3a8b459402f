"""The GitHub side of a run: one organisation through the REST API (PyGithub), with a token (the
``github_token`` setting, else ``GITHUB_TOKEN``). Each listing is read once per run.

Blocking: the runner calls it in a thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_API_URL = "https://api.github.com"


class GitHubApi:
    """Cached reads of one GitHub organisation."""

    provider = "github"

    def __init__(self, org: str, token: str, *, api_url: str = DEFAULT_API_URL) -> None:
        from github import Auth, Github

        self.org_name = org
        self.account = org
        self._gh = Github(base_url=api_url or DEFAULT_API_URL, auth=Auth.Token(token) if token else None,
                          retry=None, timeout=30, per_page=100)  # fmt: skip
        self._memo: dict[str, Any] = {}
        self._lock = threading.RLock()  # a listing reads the organisation first

    def _cached(self, key: str, read: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._memo:
                self._memo[key] = read()
            value: T = self._memo[key]
            return value

    def close(self) -> None:
        self._gh.close()

    def organization(self) -> Any:
        return self._cached("org", lambda: self._gh.get_organization(self.org_name))

    def two_factor_required(self) -> bool | None:
        """None when the token cannot see it (only owners can)."""
        value = self.organization().two_factor_requirement_enabled
        return None if value is None else bool(value)

    def members(self) -> list[str]:
        return self._cached("members", lambda: sorted(m.login for m in self.organization().get_members()))

    def members_without_2fa(self) -> list[str]:
        return self._cached(
            "members_2fa_disabled",
            lambda: sorted(m.login for m in self.organization().get_members(filter_="2fa_disabled")),
        )

    def outside_collaborators(self) -> list[tuple[str, str, bool]]:
        """(repository, login, has admin) of every outside collaborator of every repository."""

        def read() -> list[tuple[str, str, bool]]:
            out = []
            for repo in self.organization().get_repos():
                for user in repo.get_collaborators(affiliation="outside"):
                    perms = user.permissions
                    out.append((repo.full_name, user.login, bool(perms is not None and perms.admin)))
            return sorted(out)

        return self._cached("outside", read)


__all__ = ["DEFAULT_API_URL", "GitHubApi"]
