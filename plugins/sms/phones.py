"""Phone numbers normalised to E.164 with ``phonenumbers``."""

from __future__ import annotations

import phonenumbers

from .constants import DEFAULT_REGION
from .errors import InvalidPhone


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str:
    """``raw`` in any common format ("(415) 555-0100", "+1 415.555.0100", "14155550100") as E.164.
    Raises InvalidPhone for text that is not a valid number."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if text.isdigit() and len(text) == 11 and text.startswith("1") and region == "US":
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as e:
        raise InvalidPhone(f"not a phone number: {raw!r}") from e
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


__all__ = ["to_e164"]
