"""Scripts with merge fields: ``Hi {firstName}, I'm {texterName} …``.

Fields are the contact's ``firstName``, ``lastName``, ``zip``, the texter's ``texterName`` and the
contact's custom fields by their CSV column name. An unknown field is an error when the campaign is
saved (``fields_of`` + ``check_script``), never a message sent with braces in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import SmsError

FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_ ]*)\}")
BUILTIN_FIELDS = ("firstName", "lastName", "zip", "cell", "texterName")


def fields_of(script: str) -> list[str]:
    return [m.group(1).strip() for m in FIELD.finditer(script)]


def check_script(script: str, custom_fields: Iterable[str] = ()) -> None:
    """Raises SmsError (``unknown_field``) naming merge fields neither built in nor custom."""
    known = {*BUILTIN_FIELDS, *custom_fields}
    unknown = sorted({f for f in fields_of(script) if f not in known})
    if unknown:
        raise SmsError(f"unknown merge field(s) {', '.join(unknown)}", code="unknown_field")


def render(script: str, values: Mapping[str, str]) -> str:
    """The script with every ``{field}`` replaced (a field without a value becomes "")."""
    return FIELD.sub(lambda m: str(values.get(m.group(1).strip(), "") or ""), script)


__all__ = ["BUILTIN_FIELDS", "check_script", "fields_of", "render"]
