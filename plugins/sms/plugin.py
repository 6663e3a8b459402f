"""The ``sms`` plugin object: its settings and routes (routes.py adds them)."""

from __future__ import annotations

from pathlib import Path

from katopotato.plugin import Plugin

from .settings import SmsSettings

SCOPE_TEXT = "sms:text"
SCOPE_ADMIN = "sms:admin"

plugin = Plugin(
    "sms",
    "0.1.0",
    description="Pencil: peer-to-peer texting through Twilio (campaigns, contacts, conversations, opt-outs)",
    settings=SmsSettings,
    migrations=Path(__file__).with_name("migrations"),  # the "sms" branch, applied by the host at start
    scopes={
        SCOPE_TEXT: "text the contacts assigned to one and answer their replies (campaign roles decide the rest)",
        SCOPE_ADMIN: "create campaigns (their creator is their owner)",
    },
)

__all__ = ["SCOPE_ADMIN", "SCOPE_TEXT", "plugin"]
