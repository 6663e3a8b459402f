"""The Twilio settings come from the environment through the service's settings module, like
every other credential, and validate against the plugin's settings model."""

from __future__ import annotations

from pathlib import Path

from katopotato.plugin_host import load_plugins
from katopotato.settings import Settings
from plugins.sms.settings import SmsSettings


def test_twilio_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "COUCHPOTATO_DATA_DIR": str(tmp_path),
        "COUCHPOTATO_PUBLIC_URL": "https://pencil.example.org/",
        "COUCHPOTATO_TWILIO_ACCOUNT_SID": "AC123",
        "COUCHPOTATO_TWILIO_AUTH_TOKEN": "secret",
        "COUCHPOTATO_TWILIO_API_URL": "http://127.0.0.1:9999",
        "COUCHPOTATO_TWILIO_FROM_NUMBERS": "+15005550006, +15005550007",
    }
    settings = Settings.load(env)
    registry = load_plugins(settings=settings.plugin_settings())
    sms = registry.settings_for("sms")
    assert isinstance(sms, SmsSettings)
    assert (sms.account_sid, sms.auth_token, sms.api_url) == ("AC123", "secret", "http://127.0.0.1:9999")
    assert sms.public_url == "https://pencil.example.org" and sms.numbers == ["+15005550006", "+15005550007"]


def test_without_twilio_variables_the_plugin_gets_its_defaults(tmp_path: Path) -> None:
    settings = Settings.load({"COUCHPOTATO_DATA_DIR": str(tmp_path)})
    assert "sms" not in settings.plugin_settings()
    sms = load_plugins(settings=settings.plugin_settings()).settings_for("sms")
    assert isinstance(sms, SmsSettings) and sms.account_sid == "" and sms.api_url == "https://api.twilio.com"
