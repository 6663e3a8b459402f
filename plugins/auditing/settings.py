"""The plugin's settings (``--setting auditing.KEY=VALUE``; the service's configuration) and the
parameters of ``auditing.run``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .constants import PAGE_HIGH_COUNT
from .notify.mail import MailOptions
from .notify.pagerduty import EVENTS_URL
from .providers import ProviderOptions
from .providers.github import DEFAULT_API_URL
from .providers.slack import DEFAULT_API_URL as SLACK_API_URL

Severity = Literal["informational", "low", "medium", "high", "critical"]


class AuditingSettings(BaseModel):
    """Settings of the ``auditing`` plugin.

    Attributes:
        providers: what the hourly scheduled run audits (empty: the scheduled run does nothing).
        mutelist: path of the default mute list (YAML).
        thresholds: ``{check id: {threshold: value}}`` over the checks' defaults.
        aws_regions, aws_profile: the AWS regions (empty: every enabled region) and boto3 profile.
        google_credentials, google_admin_email, google_customer, google_endpoint: the Workspace audit's
            service-account file (empty: Application Default Credentials), the administrator it acts as
            (domain-wide delegation), the customer and the Directory API endpoint (empty: Google's).
        github_org, github_token, github_api_url: the GitHub organisation, token (empty: GITHUB_TOKEN)
            and REST endpoint.
        slack_token, slack_api_url: the Slack token (empty: SLACK_TOKEN) and Web API endpoint.
        slack_webhook_url: incoming webhook for the per-run summary (empty: no Slack).
        pagerduty_routing_key, pagerduty_url: Events API v2 integration (no key: no paging).
        page_severity, page_high_count: page for any new failure at or above ``page_severity``, or for
            more than ``page_high_count`` new high ones.
        mail_owners: e-mail each resource's owner its new failures; mail_fallback_to: for unknown owners.
        mail_from, mail_transport, smtp_*, ses_region: how e-mail goes out.
        pushgateway_url: Prometheus Pushgateway for the run's metrics (empty: not pushed).
        report_url: a link to the console put in notifications.
    """

    model_config = ConfigDict(extra="forbid")

    providers: list[str] = Field(default_factory=list)
    mutelist: str = ""
    thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    aws_regions: list[str] = Field(default_factory=list)
    aws_profile: str = ""
    google_credentials: str = ""
    google_admin_email: str = ""
    google_customer: str = "my_customer"
    google_endpoint: str = ""
    github_org: str = ""
    github_token: str = ""
    github_api_url: str = DEFAULT_API_URL
    slack_token: str = ""
    slack_api_url: str = SLACK_API_URL
    slack_webhook_url: str = ""
    pagerduty_routing_key: str = ""
    pagerduty_url: str = EVENTS_URL
    page_severity: Severity = "critical"  # constants.PAGE_SEVERITY
    page_high_count: int = Field(default=PAGE_HIGH_COUNT, ge=0)
    mail_owners: bool = True
    mail_fallback_to: list[str] = Field(default_factory=list)
    mail_from: str = "couchpotato-auditing@localhost"
    mail_transport: Literal["smtp", "ses"] = "smtp"
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    ses_region: str = ""
    pushgateway_url: str = ""
    report_url: str = ""

    def mail(self) -> MailOptions:
        return MailOptions(
            sender=self.mail_from, transport=self.mail_transport, smtp_host=self.smtp_host or "localhost",
            smtp_port=self.smtp_port, smtp_username=self.smtp_username, smtp_password=self.smtp_password,
            smtp_security=self.smtp_security, ses_region=self.ses_region, fallback_to=tuple(self.mail_fallback_to),
        )  # fmt: skip

    def provider_options(self, provider: str, account: str, regions: list[str]) -> ProviderOptions:
        default = {"github": self.github_org, "google": self.google_customer}.get(provider, "")
        return ProviderOptions(
            account=account or default, aws_regions=regions or self.aws_regions, aws_profile=self.aws_profile,
            google_credentials=self.google_credentials, google_admin_email=self.google_admin_email,
            google_endpoint=self.google_endpoint, github_token=self.github_token, github_api_url=self.github_api_url,
            slack_token=self.slack_token, slack_api_url=self.slack_api_url,
        )  # fmt: skip

    def mail_enabled(self) -> bool:
        return self.mail_owners and (bool(self.smtp_host) or self.mail_transport == "ses")


class RunParams(BaseModel):
    """Parameters of ``auditing.run``; what is not given comes from the plugin's settings."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(default="", description="aws, google, github or slack (default: the configured providers)")
    account: str = Field(default="", description="GitHub organisation or Workspace customer (default: settings)")
    mutelist: str = Field(default="", description="a YAML mute list (default: the mutelist setting)")
    format: Literal["json", "csv", "html"] = Field(default="json", description="the output's format")
    checks: list[str] = Field(default_factory=list, description="only checks whose id matches (globs)")
    skip_checks: list[str] = Field(default_factory=list, description="leave out checks whose id matches (globs)")
    regions: list[str] = Field(default_factory=list, description="AWS regions (default: setting, else all enabled)")
    thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict, description="{check id: {name: value}}")
    notify: bool = Field(default=True, description="send Slack, PagerDuty, e-mail and metrics")
    scheduled: bool = Field(default=False, description="a scheduled run: without configured providers it does nothing")


__all__ = ["AuditingSettings", "RunParams", "Severity"]
