"""Errors of the SMS plugin. Each carries the HTTP status and the stable code the API answers with.

SmsError (400 invalid_request)
├── InvalidPhone      400 invalid_phone
├── InvalidCsv        400 invalid_csv
├── NotAllowed        403 sms_forbidden
├── BadSignature      403 bad_signature
├── NotFound          404 campaign_not_found, contact_not_found
├── SendRefused       409 opted_out, outside_texting_hours, campaign_inactive, not_assigned, already_sent
└── GatewayError      502 twilio_error (Twilio refused, or kept failing after the retries)
"""

from __future__ import annotations


class SmsError(Exception):
    """An error answered as ``{"error": {"code", "message"}}``."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidPhone(SmsError, ValueError):
    """A phone number that is not a valid, dialable number."""

    code = "invalid_phone"


class InvalidCsv(SmsError, ValueError):
    """A contact list that cannot be read (no cell column, not UTF-8)."""

    code = "invalid_csv"


class NotAllowed(SmsError, PermissionError):
    """The caller's role in the campaign does not allow this."""

    status = 403
    code = "sms_forbidden"


class BadSignature(SmsError, PermissionError):
    """A Twilio webhook without a valid X-Twilio-Signature."""

    status = 403
    code = "bad_signature"


class NotFound(SmsError, LookupError):
    """No such campaign or contact."""

    status = 404
    code = "not_found"


class SendRefused(SmsError):
    """A send check failed; ``code`` names which."""

    status = 409
    code = "send_refused"


class GatewayError(SmsError):
    """Twilio refused the message or kept failing; ``twilio_code`` is Twilio's error code."""

    status = 502
    code = "twilio_error"

    def __init__(
        self, message: str, *, twilio_code: int | None = None, http_status: int | None = None, maybe_sent: bool = False
    ) -> None:
        super().__init__(message)
        self.twilio_code = twilio_code
        self.http_status = http_status
        self.maybe_sent = maybe_sent


__all__ = [
    "BadSignature",
    "GatewayError",
    "InvalidCsv",
    "InvalidPhone",
    "NotAllowed",
    "NotFound",
    "SendRefused",
    "SmsError",
]
