"""The pure parts: phone numbers, ZIP zones and texting hours (DST per zone), opt-out keywords,
merge fields, the status machine, the send checks and CSV contact lists."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.sms.checks import SendSnapshot, check_send, send_before
from plugins.sms.contacts import parse_csv
from plugins.sms.errors import InvalidCsv, InvalidPhone, SendRefused, SmsError
from plugins.sms.optout import KeywordRules
from plugins.sms.phones import to_e164
from plugins.sms.render import check_script, render
from plugins.sms.status import should_record
from plugins.sms.zones import STATE_ZONES, within_texting_hours, zone_for_zip, zones


@pytest.mark.parametrize(
    "raw", ["(415) 555-2671", "415.555.2671", "+1 415 555 2671", "14155552671", "1-415-555-2671", " 4155552671 "]
)
def test_phone_formats_normalise_to_e164(raw: str) -> None:
    assert to_e164(raw) == "+14155552671"


@pytest.mark.parametrize("raw", ["", "hello", "555-1234", "+1 000 000 0000", "123"])
def test_invalid_phones_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        to_e164(raw)


@pytest.mark.parametrize(
    ("zip_code", "zone"),
    [
        ("94103", "America/Los_Angeles"), ("10001", "America/New_York"), ("2138", "America/New_York"),
        ("60601-1234", "America/Chicago"), ("85001", "America/Phoenix"), ("32501", "America/Chicago"),
        ("32301", "America/New_York"), ("79901", "America/Denver"), ("96813", "Pacific/Honolulu"),
        ("99501", "America/Anchorage"), ("83814", "America/Los_Angeles"), ("83702", "America/Boise"),
        ("00901", "America/Puerto_Rico"), ("09012", None), ("abc", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_zip_to_zone(zip_code: str | None, zone: str | None) -> None:
    assert zone_for_zip(zip_code) == zone


def test_every_zone_of_the_table_is_known_to_zoneinfo() -> None:
    for z in zones():
        ZoneInfo(z)


def test_dst_edges_new_york() -> None:
    # 13:30 UTC is 8:30 EST (before the change) and 9:30 EDT (after it): not one reference offset
    assert not within_texting_hours("America/New_York", datetime(2026, 3, 7, 13, 30, tzinfo=UTC), 9, 21)
    assert within_texting_hours("America/New_York", datetime(2026, 3, 8, 13, 30, tzinfo=UTC), 9, 21)
    assert within_texting_hours("America/New_York", datetime(2026, 10, 31, 13, 30, tzinfo=UTC), 9, 21)
    assert not within_texting_hours("America/New_York", datetime(2026, 11, 1, 13, 30, tzinfo=UTC), 9, 21)
    # Arizona keeps MST: 16:30 UTC is 9:30 there all year, while Denver moves
    for month in (1, 7):
        assert within_texting_hours("America/Phoenix", datetime(2026, month, 15, 16, 30, tzinfo=UTC), 9, 21)
    assert not within_texting_hours("America/Phoenix", datetime(2026, 7, 15, 15, 30, tzinfo=UTC), 9, 21)
    assert within_texting_hours("America/Denver", datetime(2026, 7, 15, 15, 30, tzinfo=UTC), 9, 21)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError):
        within_texting_hours("America/New_York", datetime(2026, 1, 1, 12), 9, 21)


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))
hours = st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda h: h[0] < h[1])


STANDARD_OFFSET_H = {"America/New_York": -5, "America/Chicago": -6, "America/Denver": -7, "America/Boise": -7,
                     "America/Los_Angeles": -8, "America/Anchorage": -9}  # fmt: skip
NO_DST_OFFSET_H = {"America/Phoenix": -7, "Pacific/Honolulu": -10, "America/Puerto_Rico": -4}


def _nth_sunday(year: int, month: int, n: int) -> int:
    first = datetime(year, month, 1).weekday()  # Monday 0 … Sunday 6
    return 1 + (6 - first) % 7 + 7 * (n - 1)


def us_local_hour(zone: str, at: datetime) -> int:
    """An oracle written from the US rule (since 2007), not from zoneinfo: DST from 02:00 standard
    time on March's second Sunday to 02:00 daylight time on November's first Sunday."""
    if zone in NO_DST_OFFSET_H:
        return (at + timedelta(hours=NO_DST_OFFSET_H[zone])).hour
    std = STANDARD_OFFSET_H[zone]
    starts = datetime(at.year, 3, _nth_sunday(at.year, 3, 2), 2, tzinfo=UTC) - timedelta(hours=std)
    ends = datetime(at.year, 11, _nth_sunday(at.year, 11, 1), 1, tzinfo=UTC) - timedelta(hours=std)
    return (at + timedelta(hours=std + (1 if starts <= at < ends else 0))).hour


@settings(max_examples=400, deadline=None)
@given(at=instants, zone=st.sampled_from(sorted({*STANDARD_OFFSET_H, *NO_DST_OFFSET_H})), window=hours)
def test_texting_hours_follow_each_zones_own_dst(at: datetime, zone: str, window: tuple[int, int]) -> None:
    start, end = window
    assert within_texting_hours(zone, at, start, end) is (start <= us_local_hour(zone, at) < end)


@settings(max_examples=300, deadline=None)
@given(at=instants, window=hours)
def test_an_unknown_zip_is_texted_only_when_every_state_zone_allows(at: datetime, window: tuple[int, int]) -> None:
    start, end = window
    allowed = within_texting_hours(None, at, start, end)
    assert allowed == all(within_texting_hours(z, at, start, end) for z in STATE_ZONES)
    if allowed:
        assert within_texting_hours("Pacific/Honolulu", at, start, end)
        assert within_texting_hours("America/New_York", at, start, end)


@settings(max_examples=200, deadline=None)
@given(at=instants, zone=st.sampled_from(sorted(zones())), start=st.integers(0, 20), extra=st.integers(1, 3))
def test_a_wider_window_allows_at_least_as_much(at: datetime, zone: str, start: int, extra: int) -> None:
    if within_texting_hours(zone, at, start + 1, start + 2):
        assert within_texting_hours(zone, at, start, start + 2 + extra)


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "Stop.", " sToP! ", "UNSUBSCRIBE", "cancel", "End", "QUIT", "stopall", "Remove me",
             "please REMOVE ME from this list", "Ｓｔｏｐ", "stop texting me"],
)  # fmt: skip
def test_opt_out_keywords_in_any_case_or_format(body: str) -> None:
    assert KeywordRules().is_opt_out(body)


@pytest.mark.parametrize("body", ["don't stop the rally", "yes I'll vote", "the end is near", "who is this?", ""])
def test_ordinary_replies_are_not_opt_outs(body: str) -> None:
    assert not KeywordRules().is_opt_out(body)


def test_keywords_are_configurable_and_start_opts_back_in() -> None:
    rules = KeywordRules.of(opt_out=["BASTA"], patterns=[])
    assert rules.is_opt_out("basta!") and not rules.is_opt_out("STOP")
    assert KeywordRules().is_opt_in("Start") and not KeywordRules().is_opt_in("start the car")


def test_render_and_check_merge_fields() -> None:
    script = "Hi {firstName}, I'm {texterName}. Still at {Precinct}?"
    values = {"firstName": "Ana", "texterName": "Bo", "Precinct": "12"}
    assert render(script, values) == "Hi Ana, I'm Bo. Still at 12?"
    check_script(script, ["Precinct"])
    with pytest.raises(SmsError) as e:
        check_script(script, [])
    assert e.value.code == "unknown_field"


def test_status_machine_records_terminal_states_once() -> None:
    assert should_record("claimed", "delivered") and should_record("sent", "undelivered")
    assert not should_record("sent", "sending")  # interim: skipped
    assert not should_record("delivered", "sent")  # out of order
    assert not should_record("delivered", "delivered")  # duplicate
    assert not should_record("failed", "delivered")
    assert not should_record("sent", "no-such-status")


NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)


def snap(**kw: object) -> SendSnapshot:
    base: dict[str, object] = dict(
        contact_id=1, campaign_id=1, cell="+14155552671", zone="America/New_York", texter_id="t1",
        contact_status="new", campaign_active=True, due_at=None, start_hour=9, end_hour=21, opted_out=False,
    )  # fmt: skip
    base.update(kw)
    return SendSnapshot(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "texter", "at", "code"),
    [
        ({"opted_out": True}, "t1", NOON_NY, "opted_out"),
        ({"campaign_active": False}, "t1", NOON_NY, "campaign_inactive"),
        ({"due_at": NOON_NY.timestamp() - 1}, "t1", NOON_NY, "campaign_inactive"),
        ({}, "t2", NOON_NY, "not_assigned"),
        ({"texter_id": None}, "t1", NOON_NY, "not_assigned"),
        ({"contact_status": "texted"}, "t1", NOON_NY, "already_sent"),
        ({}, "t1", NOON_NY.replace(hour=2), "outside_texting_hours"),
        ({"zone": "America/Los_Angeles"}, "t1", NOON_NY.replace(hour=14), "outside_texting_hours"),
    ],
)
def test_send_checks(kw: dict[str, object], texter: str, at: datetime, code: str) -> None:
    with pytest.raises(SendRefused) as e:
        check_send(snap(**kw), texter, at)
    assert e.value.code == code


def test_send_passes_and_send_before_is_the_window_close() -> None:
    check_send(snap(), "t1", NOON_NY)
    close, validity = send_before(snap(), NOON_NY)
    assert close == datetime(2026, 6, 11, 1, 0, tzinfo=UTC)  # 21:00 EDT
    assert validity == 9 * 3600
    close, validity = send_before(snap(end_hour=24), datetime(2026, 6, 10, 13, 30, tzinfo=UTC))
    assert validity == 36_000 and close - datetime(2026, 6, 10, 13, 30, tzinfo=UTC) == timedelta(hours=10)


def test_csv_upload_normalises_and_reports() -> None:
    data = (
        b"First Name,Last Name,Cell,Zip,Precinct\n"
        b"Ana,Ruiz,(415) 555-2671,94103,12\n"
        b"Bo,Li,415.555.2671,94103,12\n"
        b"Cy,Ng,not a phone,10001,3\n"
        b"Di,Oh,+1 212 555 0143,2138,4\n"
        b"Ed,Po,+1 212 555 0199,10001,5\n"
    )
    parsed = parse_csv(data, opted_out={"+12125550199"})
    assert [c.cell for c in parsed.contacts] == ["+14155552671", "+12125550143"]
    assert parsed.contacts[0].zone == "America/Los_Angeles" and parsed.contacts[0].custom == {"Precinct": "12"}
    assert parsed.contacts[1].zone == "America/New_York"
    assert parsed.duplicates == [{"line": 3, "cell": "+14155552671"}]
    assert [r["line"] for r in parsed.invalid] == [4]
    assert parsed.opted_out == [{"line": 6, "cell": "+12125550199"}]
    assert parsed.custom_fields == ["Precinct"]


def test_csv_without_a_cell_column_is_refused() -> None:
    with pytest.raises(InvalidCsv):
        parse_csv(b"name,zip\nAna,94103\n")
    with pytest.raises(InvalidCsv):
        parse_csv(b"\xff\xfe\x00garbage")
    for junk in (b"\x13\r\x03\xc2\x91aC\xc3\x99", b'"cell\n', b"a\x00b\n"):  # found by schemathesis
        with contextlib.suppress(InvalidCsv):  # a 400, not a csv.Error (a 500)
            parse_csv(junk)
