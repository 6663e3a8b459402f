"""The provider sessions checks read through: one per provider and run, cached and counted.

``open_api(provider, options)`` builds it from the standard places — boto3's own chain for AWS
(profiles, roles, ``AWS_ENDPOINT_URL``), a service-account JSON with domain-wide delegation (or
Application Default Credentials) for Google, a token (the setting, else ``GITHUB_TOKEN``) for
GitHub, a token (the setting, else ``SLACK_TOKEN``) for Slack — and returns it with the account
it audits. Blocking: call it in a thread."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import AuditError
from .aws import AwsApi
from .github import DEFAULT_API_URL, GitHubApi
from .google import GoogleApi, load_credentials
from .slack import DEFAULT_API_URL as SLACK_API_URL
from .slack import SlackApi


@dataclass(frozen=True)
class ProviderOptions:
    """Where and as whom to connect (from the plugin's settings and the run's parameters).

    Attributes:
        account: the GitHub organisation, or the Workspace customer id (``my_customer``).
        aws_regions, aws_profile: AWS regions (empty: every enabled one) and boto3 profile.
        google_credentials, google_admin_email, google_endpoint: service-account file, the administrator
            it acts as, and the Directory API endpoint (empty: Google's).
        github_token, github_api_url: GitHub token (empty: ``GITHUB_TOKEN``) and REST endpoint.
        slack_token, slack_api_url: Slack token (empty: ``SLACK_TOKEN``) and Web API endpoint.
    """

    account: str = ""
    aws_regions: list[str] = field(default_factory=list)
    aws_profile: str = ""
    google_credentials: str = ""
    google_admin_email: str = ""
    google_endpoint: str = ""
    github_token: str = ""
    github_api_url: str = DEFAULT_API_URL
    slack_token: str = ""
    slack_api_url: str = SLACK_API_URL


def open_api(provider: str, options: ProviderOptions) -> tuple[Any, str]:
    """(the provider's API session, the account it audits); raises whatever the provider raises."""
    if provider == "aws":
        api = AwsApi(regions=options.aws_regions, profile=options.aws_profile)
        return api, api.account_id()
    if provider == "google":
        creds = load_credentials(options.google_credentials, options.google_admin_email)
        customer = options.account or "my_customer"
        label = customer
        if customer == "my_customer" and "@" in options.google_admin_email:
            label = options.google_admin_email.split("@", 1)[1]
        return GoogleApi(creds, customer=customer, endpoint=options.google_endpoint, account=label), label
    if provider == "github":
        if not options.account:
            raise AuditError("a GitHub audit needs the organisation: pass --account ORG or set auditing.github_org")
        token = options.github_token or os.environ.get("GITHUB_TOKEN", "")
        return GitHubApi(options.account, token, api_url=options.github_api_url), options.account
    if provider == "slack":
        token = options.slack_token or os.environ.get("SLACK_TOKEN", "")
        if not token:
            raise AuditError("a Slack audit needs a token: set auditing.slack_token or SLACK_TOKEN")
        slack = SlackApi(token, api_url=options.slack_api_url)
        return slack, slack.team()
    raise AuditError(f"no session for provider {provider!r}")


def close_api(api: Any) -> None:
    """Release the session's connections."""
    close = getattr(api, "close", None)
    if callable(close):
        close()


def api_calls(api: Any) -> int:
    calls = getattr(api, "calls", None)
    return sum(calls.values()) if calls is not None else 0


__all__ = ["AwsApi", "GitHubApi", "GoogleApi", "ProviderOptions", "SlackApi", "api_calls", "close_api", "open_api"]
