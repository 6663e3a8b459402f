"""X-Twilio-Signature: Twilio's published test vector, ports, tampering, unknown parameters, SHA-256."""

from __future__ import annotations

import base64
import hmac

import pytest

from plugins.sms.errors import BadSignature
from plugins.sms.settings import SmsSettings
from plugins.sms.signature import signed_url, verify

# Twilio's documented example (security docs and every twilio-* library's RequestValidator tests)
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
          "To": "+18005551212"}  # fmt: skip
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
SETTINGS = SmsSettings(auth_token=TOKEN)


def test_the_published_vector_validates() -> None:
    verify(SETTINGS, URL, PARAMS, SIGNATURE)


def test_with_and_without_the_default_port() -> None:
    verify(SETTINGS, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, SIGNATURE)


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (URL, {**PARAMS, "Digits": "9999"}, SIGNATURE),  # a tampered value
        (URL, {**PARAMS, "Extra": "1"}, SIGNATURE),  # a parameter added after signing
        (URL + "&baz=3", PARAMS, SIGNATURE),  # another URL
        (URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8"),  # a truncated signature
        (URL, PARAMS, ""),  # none
    ],
)
def test_tampered_requests_are_refused(url: str, params: dict[str, str], signature: str) -> None:
    with pytest.raises(BadSignature):
        verify(SETTINGS, url, params, signature)


def test_a_wrong_token_or_no_token_refuses() -> None:
    with pytest.raises(BadSignature):
        verify(SmsSettings(auth_token="54321"), URL, PARAMS, SIGNATURE)
    with pytest.raises(BadSignature, match="AUTH_TOKEN"):
        verify(SmsSettings(), URL, PARAMS, SIGNATURE)


def _hmac(secret: str, url: str, params: dict[str, str], digest: str) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(secret.encode(), data.encode(), digest).digest()).decode()


def test_unknown_parameters_are_accepted_when_signed() -> None:
    params = {**PARAMS, "SomeFieldTwilioAddsNextYear": "x"}
    verify(SETTINGS, URL, params, _hmac(TOKEN, URL, params, "sha1"))


def test_sha256_signatures_when_configured() -> None:
    s = SmsSettings(auth_token=TOKEN, webhook_shared_key="shared-secret")
    header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    sig = _hmac("shared-secret", URL, PARAMS, "sha256")
    verify(s, URL, PARAMS, sig, header)
    with pytest.raises(BadSignature):
        verify(s, URL, PARAMS, sig)  # read as SHA-1
    with pytest.raises(BadSignature):
        verify(s, URL, PARAMS, _hmac(TOKEN, URL, PARAMS, "sha256"), header)  # signed with the wrong secret


def test_signed_url_is_the_public_base_plus_the_path() -> None:
    assert signed_url(
        "https://pencil.example.org/", "/v1/plugins/sms/twilio/status?x=1", "http://10.0.0.2:8080/v1"
    ) == ("https://pencil.example.org/v1/plugins/sms/twilio/status?x=1")
    assert signed_url("", "/p", "http://127.0.0.1:8080/p") == "http://127.0.0.1:8080/p"
