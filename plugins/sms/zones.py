"""ZIP code → IANA time zone, and texting hours in the contact's own zone (DST per zone, by zoneinfo).

The table maps the first three digits of a US ZIP code (the sectional center) to one zone. It was
drawn for this project from the states' ZIP ranges and the zone boundaries that split states (the
Florida panhandle, East/West Tennessee and Kentucky, NW and SW Indiana, the Michigan UP, the
Dakotas, Nebraska's panhandle, El Paso, North Idaho, Malheur County in Oregon). Its granularity is
the 3-digit prefix: counties that sit on the other side of a zone line inside one prefix get the
prefix's zone (documented in docs/sms.md). A ZIP the table does not know (military APO/FPO, bad
input) has no zone: such a contact may be texted only when it is texting hours in every zone of
the fifty states at once, New York to Honolulu (the conservative rule).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

EASTERN = "America/New_York"
CENTRAL = "America/Chicago"
MOUNTAIN = "America/Denver"
ARIZONA = "America/Phoenix"  # no DST
PACIFIC = "America/Los_Angeles"
IDAHO = "America/Boise"
ALASKA = "America/Anchorage"
HAWAII = "Pacific/Honolulu"  # no DST
PUERTO_RICO = "America/Puerto_Rico"  # no DST
VIRGIN_ISLANDS = "America/St_Thomas"
GUAM = "Pacific/Guam"

# (first prefix, last prefix, zone), inclusive; later rows override earlier ones
_RANGES: tuple[tuple[int, int, str], ...] = (
    (5, 5, EASTERN),  # Holtsville NY (IRS)
    (6, 7, PUERTO_RICO),
    (8, 8, VIRGIN_ISLANDS),
    (9, 9, PUERTO_RICO),
    (10, 89, EASTERN),  # New England, New Jersey
    (100, 339, EASTERN),  # NY, PA, DE, DC, MD, VA, WV, NC, SC, GA, FL
    (324, 325, CENTRAL),  # Florida panhandle: Panama City, Pensacola
    (341, 349, EASTERN),  # Florida
    (350, 369, CENTRAL),  # Alabama
    (370, 372, CENTRAL),  # Middle Tennessee
    (373, 379, EASTERN),  # East Tennessee
    (380, 385, CENTRAL),  # West Tennessee
    (386, 397, CENTRAL),  # Mississippi
    (398, 399, EASTERN),  # Georgia
    (400, 418, EASTERN),  # Kentucky, east
    (420, 424, CENTRAL),  # Kentucky, west
    (425, 427, EASTERN),
    (430, 462, EASTERN),  # Ohio, Indiana
    (463, 464, CENTRAL),  # NW Indiana (Gary)
    (465, 475, EASTERN),
    (476, 477, CENTRAL),  # SW Indiana (Evansville)
    (478, 497, EASTERN),  # Indiana, Michigan
    (498, 498, CENTRAL),  # Michigan UP on the Wisconsin line (Iron Mountain, Menominee)
    (499, 499, EASTERN),
    (500, 576, CENTRAL),  # Iowa, Wisconsin, Minnesota, South Dakota east
    (577, 577, MOUNTAIN),  # Rapid City
    (580, 585, CENTRAL),  # North Dakota
    (586, 586, MOUNTAIN),  # Dickinson
    (587, 588, CENTRAL),
    (590, 599, MOUNTAIN),  # Montana
    (600, 692, CENTRAL),  # IL, MO, KS, NE
    (693, 693, MOUNTAIN),  # Nebraska panhandle
    (700, 797, CENTRAL),  # LA, AR, OK, TX
    (798, 799, MOUNTAIN),  # El Paso
    (800, 831, MOUNTAIN),  # Colorado, Wyoming
    (832, 837, IDAHO),
    (838, 838, PACIFIC),  # North Idaho
    (840, 847, MOUNTAIN),  # Utah
    (850, 865, ARIZONA),
    (870, 884, MOUNTAIN),  # New Mexico
    (889, 898, PACIFIC),  # Nevada
    (900, 961, PACIFIC),  # California
    (967, 968, HAWAII),
    (969, 969, GUAM),
    (970, 978, PACIFIC),  # Oregon
    (979, 979, IDAHO),  # Malheur County, Oregon
    (980, 994, PACIFIC),  # Washington
    (995, 999, ALASKA),
)
STATE_ZONES = (EASTERN, CENTRAL, MOUNTAIN, ARIZONA, IDAHO, PACIFIC, ALASKA, HAWAII)  # the unknown-ZIP rule
UNKNOWN_PREFIXES = frozenset({*range(90, 100), 340, *range(962, 967)})  # APO/FPO: no land zone


@cache
def _table() -> dict[str, str]:
    out: dict[str, str] = {}
    for first, last, zone in _RANGES:
        for prefix in range(first, last + 1):
            if prefix not in UNKNOWN_PREFIXES:
                out[f"{prefix:03d}"] = zone
    return out


def zones() -> frozenset[str]:
    """Every zone the table names."""
    return frozenset(_table().values())


def zone_for_zip(zip_code: str | None) -> str | None:
    """The IANA zone of a US ZIP ("94103", "94103-1234", "2138" for 02138 with its 0 lost), or None."""
    digits = "".join(c for c in (zip_code or "") if c.isdigit())
    if "-" in (zip_code or ""):
        digits = "".join(c for c in (zip_code or "").split("-")[0] if c.isdigit())
    if len(digits) == 9:
        digits = digits[:5]
    if len(digits) == 4:  # spreadsheets drop the leading zero of New England ZIPs
        digits = "0" + digits
    if len(digits) != 5:
        return None
    return _table().get(digits[:3])


def local_hour_ok(zone: str, at: datetime, start_hour: int, end_hour: int) -> bool:
    """It is within [start_hour, end_hour) on the wall clock of ``zone`` at the instant ``at``."""
    local = at.astimezone(ZoneInfo(zone))
    minutes = local.hour * 60 + local.minute
    return start_hour * 60 <= minutes < end_hour * 60


def within_texting_hours(zone: str | None, at: datetime, start_hour: int, end_hour: int) -> bool:
    """May a contact in ``zone`` (None: unknown) be texted at ``at`` (an aware instant)?"""
    if at.tzinfo is None:
        raise ValueError("texting hours are checked at an aware instant")
    if zone is not None:
        return local_hour_ok(zone, at, start_hour, end_hour)
    return all(local_hour_ok(z, at, start_hour, end_hour) for z in STATE_ZONES)


def window_end(zone: str | None, at: datetime, end_hour: int) -> datetime:
    """When today's texting window closes for the contact (UTC): ``send_before`` of a message sent
    at ``at``. For an unknown zone, the earliest close among the states' zones."""
    if zone is None:
        return min(window_end(z, at, end_hour) for z in STATE_ZONES)
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    close = datetime(local.year, local.month, local.day, end_hour % 24, tzinfo=tz)
    if end_hour >= 24:
        close += timedelta(days=1)
    return close.astimezone(UTC)


__all__ = [
    "STATE_ZONES",
    "UNKNOWN_PREFIXES",
    "local_hour_ok",
    "window_end",
    "within_texting_hours",
    "zone_for_zip",
    "zones",
]
