"""The SMS plugin (Pencil): peer-to-peer texting through Twilio — one human click per message,
replies routed to the texter who sent, STOP honoured everywhere, no texts at night in the
contact's own time zone (docs/sms.md).

Registered with the host under the entry point ``couchpotato.plugins: sms = plugins.sms:plugin``.
"""

from __future__ import annotations

from .checks import SendSnapshot, check_send, send_before
from .contacts import ContactRow, ParsedList, parse_csv
from .openapi import describe as _describe
from .optout import KeywordRules
from .phones import to_e164
from .plugin import plugin
from .render import render
from .routes import routes
from .settings import SmsSettings
from .status import MessageStatus
from .zones import within_texting_hours, zone_for_zip

plugin.openapi = _describe()

__all__ = [
    "ContactRow",
    "KeywordRules",
    "MessageStatus",
    "ParsedList",
    "SendSnapshot",
    "SmsSettings",
    "check_send",
    "parse_csv",
    "plugin",
    "render",
    "routes",
    "send_before",
    "to_e164",
    "within_texting_hours",
    "zone_for_zip",
]
