"""The plugin's settings: Twilio credentials and endpoints (``COUCHPOTATO_TWILIO_*``, handed over
by the service's settings module with ``COUCHPOTATO_PUBLIC_URL``), opt-out keywords, rate limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .constants import MAX_SEND_TRIES, PER_ACCOUNT_RATE_PER_S, PER_NUMBER_RATE_PER_S, TWILIO_API_URL
from .optout import OPT_OUT_KEYWORDS, OPT_OUT_PATTERNS


class SmsSettings(BaseModel):
    """Settings of the ``sms`` plugin.

    Attributes:
        account_sid, auth_token: the Twilio account (the token also signs webhooks).
        api_url: Twilio's REST base URL (a local stand-in in tests and benchmarks).
        messaging_service_sid: send through this Messaging Service (Twilio picks the number).
        from_numbers: without a Messaging Service, the pool of sending numbers (comma-separated E.164);
            a contact keeps the number that first texted it.
        public_url: the service's public base URL; webhook signatures are computed over it + the path.
        webhook_shared_key: the secret of HMAC-SHA256 webhooks (X-Twilio-Webhooks-Signature-Settings);
            empty: the auth token.
        opt_out_keywords, opt_out_patterns: what opts a replier out (docs/sms.md).
        per_number_rate_per_s, per_account_rate_per_s: sends per second per sending number and per account.
        max_send_tries: tries of one send on 429/5xx (backoff in between).
        status_callback: ask Twilio for status callbacks (needs ``public_url``).
    """

    model_config = ConfigDict(extra="forbid")

    account_sid: str = ""
    auth_token: str = ""
    api_url: str = TWILIO_API_URL
    messaging_service_sid: str = ""
    from_numbers: str = ""
    public_url: str = ""
    webhook_shared_key: str = ""
    opt_out_keywords: list[str] = Field(default_factory=lambda: list(OPT_OUT_KEYWORDS))
    opt_out_patterns: list[str] = Field(default_factory=lambda: list(OPT_OUT_PATTERNS))
    per_number_rate_per_s: float = Field(default=PER_NUMBER_RATE_PER_S, gt=0)
    per_account_rate_per_s: float = Field(default=PER_ACCOUNT_RATE_PER_S, gt=0)
    max_send_tries: int = Field(default=MAX_SEND_TRIES, ge=1)
    status_callback: bool = True

    @property
    def numbers(self) -> list[str]:
        return [n.strip() for n in self.from_numbers.split(",") if n.strip()]


__all__ = ["SmsSettings"]
