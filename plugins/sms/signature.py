"""X-Twilio-Signature on the webhooks, checked with twilio's ``RequestValidator``.

The signed URL is ``public_url`` + the request's path (and query), as Twilio requested it; the
validator tries it with and without the default port. The form's parameters are all signed, known
or not. A request whose X-Twilio-Webhooks-Signature-Settings names ``algorithm=HMAC_SHA256`` is
checked with SHA-256 and the configured shared key (else the auth token); SHA-1 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import HMAC_SHA256, RequestValidator, get_signature_algorithm

from .errors import BadSignature
from .settings import SmsSettings


def signed_url(public_url: str, path_qs: str, fallback: str) -> str:
    """The URL Twilio signed: the configured public base + path, or the URL as this server saw it."""
    return public_url.rstrip("/") + path_qs if public_url else fallback


def verify(
    settings: SmsSettings, url: str, params: Mapping[str, str] | object, signature: str, algorithm_header: str = ""
) -> None:
    """Raises BadSignature unless ``signature`` signs ``url`` and ``params``."""
    if not settings.auth_token:
        raise BadSignature("webhooks are refused: COUCHPOTATO_TWILIO_AUTH_TOKEN is not set")
    if not signature:
        raise BadSignature("no X-Twilio-Signature")
    algorithm = get_signature_algorithm(algorithm_header)
    secret = settings.webhook_shared_key if algorithm == HMAC_SHA256 and settings.webhook_shared_key else None
    validator = RequestValidator(secret or settings.auth_token)
    if not validator.validate(url, params, signature, algorithm):
        raise BadSignature("the X-Twilio-Signature does not match this request")


__all__ = ["signed_url", "verify"]
