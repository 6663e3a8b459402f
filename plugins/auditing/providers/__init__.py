"""The provider sessions checks read through: one per provider and run, cached and counted.

``open_api(provider, settings, params)`` builds it from the standard places (boto3's chain for AWS)
and returns it with the account it audits. Blocking: call it in a thread."""

from __future__ import annotations

from typing import Any

from ..errors import AuditError
from .aws import AwsApi


def open_api(provider: str, *, regions: list[str], profile: str = "") -> tuple[Any, str]:
    """(the provider's API session, the account id); raises whatever the provider raises."""
    if provider == "aws":
        api = AwsApi(regions=regions, profile=profile)
        return api, api.account_id()
    raise AuditError(f"no session for provider {provider!r}")


def api_calls(api: Any) -> int:
    calls = getattr(api, "calls", None)
    return sum(calls.values()) if calls is not None else 0


__all__ = ["AwsApi", "api_calls", "open_api"]
