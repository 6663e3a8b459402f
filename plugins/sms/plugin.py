"""The ``sms`` plugin object: its settings and routes (routes.py adds them)."""

from __future__ import annotations

from katopotato.plugin import Plugin

from .settings import SmsSettings

plugin = Plugin(
    "sms",
    "0.1.0",
    description="Pencil: peer-to-peer texting through Twilio (campaigns, contacts, conversations, opt-outs)",
    settings=SmsSettings,
)

__all__ = ["plugin"]
