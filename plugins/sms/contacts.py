"""Contact lists from CSV: first name, last name, cell, zip and custom fields.

Headers are matched loosely (``First Name``, ``first_name``, ``firstName``); every other column is
a custom field usable in scripts under its header. Numbers become E.164; invalid ones, duplicates
(inside the file) and opted-out numbers are reported, not loaded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Container
from dataclasses import dataclass, field

from .errors import InvalidCsv, InvalidPhone
from .phones import to_e164
from .zones import zone_for_zip

_ALIASES = {
    "firstname": "first_name", "first": "first_name", "lastname": "last_name", "last": "last_name",
    "cell": "cell", "phone": "cell", "mobile": "cell", "cellphone": "cell", "phonenumber": "cell",
    "zip": "zip", "zipcode": "zip", "postalcode": "zip", "zip5": "zip",
}  # fmt: skip


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


@dataclass(frozen=True)
class ContactRow:
    """A contact ready to store."""

    first_name: str
    last_name: str
    cell: str
    zip: str
    zone: str | None
    custom: dict[str, str]


@dataclass
class ParsedList:
    """A parsed contact list: what loads, and what was left out and why (by 1-based line)."""

    contacts: list[ContactRow] = field(default_factory=list)
    invalid: list[dict[str, object]] = field(default_factory=list)
    duplicates: list[dict[str, object]] = field(default_factory=list)
    opted_out: list[dict[str, object]] = field(default_factory=list)
    custom_fields: list[str] = field(default_factory=list)


def parse_csv(
    data: bytes | str, *, opted_out: Container[str] = frozenset(), seen: Container[str] = frozenset()
) -> ParsedList:
    """Parse a contact list. ``seen``: numbers already in the campaign (reported as duplicates)."""
    try:
        return _parse(data, opted_out, seen)
    except csv.Error as e:
        raise InvalidCsv(f"the contact list is not readable CSV: {e}") from e


def _parse(data: bytes | str, opted_out: Container[str], seen: Container[str]) -> ParsedList:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise InvalidCsv("the contact list is not UTF-8 text") from e
    reader = csv.DictReader(io.StringIO(text.replace("\x00", ""), newline=""))
    headers = reader.fieldnames or []
    mapping = {h: _ALIASES.get(_key(h), "") for h in headers}
    if "cell" not in mapping.values():
        raise InvalidCsv(f"no cell/phone column among {', '.join(headers) or 'no headers'}")
    out = ParsedList(custom_fields=[h for h, k in mapping.items() if not k])
    mine: set[str] = set()
    for line, row in enumerate(reader, start=2):
        std = {k: (row.get(h) or "").strip() for h, k in mapping.items() if k}
        raw = std.get("cell", "")
        try:
            cell = to_e164(raw)
        except InvalidPhone as e:
            out.invalid.append({"line": line, "cell": raw, "reason": str(e)})
            continue
        if cell in mine or cell in seen:
            out.duplicates.append({"line": line, "cell": cell})
            continue
        mine.add(cell)
        if cell in opted_out:
            out.opted_out.append({"line": line, "cell": cell})
            continue
        custom = {h: (row.get(h) or "").strip() for h in out.custom_fields}
        zip_code = std.get("zip", "")
        out.contacts.append(
            ContactRow(
                std.get("first_name", ""), std.get("last_name", ""), cell, zip_code, zone_for_zip(zip_code), custom
            )
        )
    return out


__all__ = ["ContactRow", "ParsedList", "parse_csv"]
