"""The checks made on the server before every send, on one snapshot read in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .constants import MAX_VALIDITY_PERIOD_S, MIN_VALIDITY_PERIOD_S
from .errors import SendRefused
from .zones import window_end, within_texting_hours


@dataclass(frozen=True)
class SendSnapshot:
    """What a send is checked against.

    Attributes:
        contact_id, campaign_id: the contact and its campaign.
        cell: the contact's number, E.164.
        zone: the contact's IANA zone (None: unknown ZIP).
        texter_id: the texter the contact is assigned to (None: unassigned).
        contact_status: ``new`` (not texted yet), ``texted``, ``replied``.
        campaign_active: the campaign is started and not archived; due_at: its due date (Unix s or None).
        start_hour, end_hour: the campaign's texting hours, local to the contact.
        opted_out: the number is on the shared opt-out list.
    """

    contact_id: int
    campaign_id: int
    cell: str
    zone: str | None
    texter_id: str | None
    contact_status: str
    campaign_active: bool
    due_at: float | None
    start_hour: int
    end_hour: int
    opted_out: bool


def check_send(snap: SendSnapshot, texter_id: str, now: datetime, *, initial: bool = True) -> None:
    """Raises SendRefused (its code says why) unless ``texter_id`` may text the contact at ``now``.
    ``initial``: the first message of the conversation (a reply may follow up a texted contact)."""
    if snap.opted_out:
        raise SendRefused(f"{snap.cell} has opted out", code="opted_out")
    if not snap.campaign_active:
        raise SendRefused("the campaign is not active", code="campaign_inactive")
    if snap.due_at is not None and now.timestamp() > snap.due_at:
        raise SendRefused("the campaign is past its due date", code="campaign_inactive")
    if snap.texter_id != texter_id:
        raise SendRefused("this contact is not assigned to you", code="not_assigned")
    if initial and snap.contact_status != "new":
        raise SendRefused("this contact has already been texted", code="already_sent")
    if not within_texting_hours(snap.zone, now, snap.start_hour, snap.end_hour):
        raise SendRefused(
            f"outside texting hours ({snap.start_hour}:00–{snap.end_hour}:00 in {snap.zone or 'every US zone'})",
            code="outside_texting_hours",
        )


def send_before(snap: SendSnapshot, now: datetime) -> tuple[datetime, int]:
    """When the message must have gone out (the close of the contact's texting window, at most
    Twilio's longest validity period away) and the ValidityPeriod in seconds that says so."""
    close = min(window_end(snap.zone, now, snap.end_hour), now + timedelta(seconds=MAX_VALIDITY_PERIOD_S))
    seconds = int((close - now).total_seconds())
    return close, max(MIN_VALIDITY_PERIOD_S, min(MAX_VALIDITY_PERIOD_S, seconds))


__all__ = ["SendSnapshot", "check_send", "send_before"]
