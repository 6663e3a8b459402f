"""Twilio message statuses: interim ones are skipped, terminal ones recorded once.

Status callbacks arrive more than once and out of order (``sent`` after ``delivered``). The store
records a callback only when it carries a terminal status and the message is not terminal yet, so
a duplicate or a late interim callback changes nothing (one conditional UPDATE, no read).
"""

from __future__ import annotations

from enum import StrEnum


class MessageStatus(StrEnum):
    """Our own states of a message plus Twilio's."""

    CLAIMED = "claimed"  # the send is under way: the contact is taken, Twilio not yet asked
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    CANCELED = "canceled"
    RECEIVED = "received"  # an inbound message


TERMINAL = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED,
                      MessageStatus.READ, MessageStatus.CANCELED})  # fmt: skip
INTERIM = frozenset({MessageStatus.ACCEPTED, MessageStatus.SCHEDULED, MessageStatus.QUEUED,
                     MessageStatus.SENDING, MessageStatus.SENT})  # fmt: skip


def parse_status(value: str) -> MessageStatus | None:
    try:
        return MessageStatus(value.strip().lower())
    except ValueError:
        return None


def is_terminal(value: str) -> bool:
    status = parse_status(value)
    return status is not None and status in TERMINAL


def should_record(current: str, incoming: str) -> bool:
    """Does a callback with ``incoming`` change a message now in ``current``?"""
    return is_terminal(incoming) and not is_terminal(current)


__all__ = ["INTERIM", "TERMINAL", "MessageStatus", "is_terminal", "parse_status", "should_record"]
