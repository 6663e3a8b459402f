"""What happens on a send, a status callback and an inbound text (the routes call these)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import store
from .checks import check_send, send_before
from .constants import ERROR_UNSUBSCRIBED
from .errors import GatewayError, SendRefused
from .gateway import TwilioGateway
from .optout import OPT_OUT_KEYWORDS, KeywordRules
from .phones import to_e164
from .render import render
from .status import is_terminal

log = logging.getLogger("plugins.sms")


@dataclass(frozen=True)
class SendResult:
    """A message handed to Twilio."""

    message_id: int
    contact_id: int
    sid: str
    status: str
    body: str
    send_before: float


def merge_values(contact: Mapping[str, Any], texter_name: str) -> dict[str, str]:
    return {
        **{str(k): str(v) for k, v in (contact.get("custom") or {}).items()},
        "firstName": contact["first_name"], "lastName": contact["last_name"], "zip": contact["zip"],
        "cell": contact["cell"], "texterName": texter_name,
    }  # fmt: skip


async def send(
    db: Any,
    gateway: TwilioGateway,
    contact_id: int,
    texter_id: str,
    *,
    body: str | None = None,
    status_callback: str = "",
    now: datetime | None = None,
) -> SendResult:
    """One human click: check, claim, hand to Twilio. ``body`` None: the campaign's first message
    (rendered from its script); else a reply in the conversation."""
    now = now or datetime.now(UTC)
    initial = body is None
    snap, contact, extra = await store.snapshot(db, contact_id)
    check_send(snap, texter_id, now, initial=initial)
    text = render(extra["script"], merge_values(contact, extra["texter_name"])) if body is None else body
    if not text.strip():
        raise SendRefused("the message is empty", code="empty_message")
    close, validity = send_before(snap, now)
    message_id = await store.claim(db, snap, texter_id, text, close.timestamp(), initial=initial)
    if message_id is None:
        raise SendRefused("this contact was texted already (or reassigned) a moment ago", code="already_sent")
    try:
        sent = await gateway.send(snap.cell, text, validity_period_s=validity, status_callback=status_callback)
    except GatewayError as e:
        carrier_stop = e.twilio_code == ERROR_UNSUBSCRIBED
        retryable = not carrier_stop and not e.maybe_sent and (e.http_status is None or e.http_status >= 429)
        await store.record_failed(db, message_id, snap, e.twilio_code, initial=initial, release=retryable)
        if carrier_stop:  # the carrier handled STOP: on the list, and no confirmation of ours
            await store.opt_out(db, snap.cell, "carrier", f"Twilio error {ERROR_UNSUBSCRIBED} on send")
            raise SendRefused(f"{snap.cell} has opted out (with the carrier)", code="opted_out") from e
        raise
    await store.record_sent(db, message_id, sent.sid, sent.status)
    return SendResult(message_id, contact_id, sent.sid, sent.status, text, close.timestamp())


async def status_callback(db: Any, form: Mapping[str, str]) -> bool:
    """A status callback: terminal states recorded once, interim ones skipped; 21610 opts out."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    code_text = form.get("ErrorCode") or ""
    code = int(code_text) if code_text.isdigit() else None
    if code == ERROR_UNSUBSCRIBED and form.get("To"):
        try:
            await store.opt_out(db, to_e164(form["To"]), "carrier", f"Twilio error {code} on {sid}")
        except ValueError:
            log.warning("status callback for %s names an unreadable number", sid)
    if not sid or not is_terminal(status):
        return False
    return await store.record_status(db, sid, status, code)


@dataclass(frozen=True)
class Inbound:
    """What an inbound text did: filed under ``contact_id`` (None: nobody texted this number),
    opted out or back in, and the confirmation to answer with (None: none of ours)."""

    contact_id: int | None
    opted_out: bool
    opted_in: bool
    reply: str | None


CARRIER_KEYWORDS = frozenset(OPT_OUT_KEYWORDS) - {"OPTOUT"}  # answered by Twilio/the carrier themselves


async def inbound(db: Any, rules: KeywordRules, form: Mapping[str, str]) -> Inbound:
    phone = to_e164(form.get("From", ""))
    body = form.get("Body", "")
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    contact = await store.inbound(db, phone, body, sid)
    contact_id = int(contact["id"]) if contact else None
    if rules.is_opt_out(body):
        added = await store.opt_out(db, phone, "keyword", f"{sid}: {body[:160]}")
        carrier_handled = body.strip().upper().strip(".!") in CARRIER_KEYWORDS
        reply = None if carrier_handled or not added else "You will get no more texts from us. Reply START to undo."
        return Inbound(contact_id, True, False, reply)
    if rules.is_opt_in(body):
        undone = await store.opt_in(db, phone, "keyword", f"{sid}: {body[:160]}")
        return Inbound(contact_id, False, undone, None)
    return Inbound(contact_id, False, False, None)


__all__ = ["Inbound", "SendResult", "inbound", "merge_values", "send", "status_callback"]
