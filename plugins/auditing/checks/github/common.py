"""What the GitHub checks share."""

from __future__ import annotations

from ...check import CheckContext
from ...providers.github import GitHubApi


def github(ctx: CheckContext) -> GitHubApi:
    if not isinstance(ctx.api, GitHubApi):
        raise TypeError(f"a github check needs a GitHubApi, got {type(ctx.api).__name__}")
    return ctx.api


__all__ = ["github"]
