"""Reading contributions: the FEC bulk format and CSV with a column mapping, chunking at row
boundaries, malformed rows reported with their line numbers (never dropped silently)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.vetting.contributions import decode, detect_format, parse_amount, parse_date, read_rows, split_chunks
from plugins.vetting.errors import FormatError
from plugins.vetting.records import Contribution, MalformedRow

from .conftest import fec_line, rows_of


def test_fec_rows_are_read_with_their_fields() -> None:
    text = (
        "\n".join(
            [
                fec_line("4011", "SMITH, ROBERT J MR.", 250, "03142024", employer="ACME", memo="X", tx="15E"),
                fec_line("4012", "ACME CORP", -50, "03152024", entity="ORG"),
            ]
        )
        + "\n"
    )
    good, bad = rows_of(text)
    assert bad == []
    a, b = good
    assert (a.id, a.line, a.name, a.entity_type, a.amount_usd, a.date, a.memo) == (
        "4011",
        1,
        "SMITH, ROBERT J MR.",
        "IND",
        250.0,
        20240314,
        True,
    )
    assert (a.committee, a.election, a.transaction_type, a.state, a.zip) == ("C00000001", "P2024", "15E", "DC", "20001")
    assert (b.id, b.line, b.entity_type, b.amount_usd, b.memo) == ("4012", 2, "ORG", -50.0, False)


def test_malformed_fec_rows_are_reported_with_line_numbers_and_skipped() -> None:
    lines = [
        fec_line("1", "A, B"),
        "C00000001|N|too|few|fields",
        fec_line("3", "C, D").replace("|100.00|", "|12abc|"),
        fec_line("4", "E, F", date="13452024"),
        "",
        fec_line("6", "G, H"),
    ]
    good, bad = rows_of("\n".join(lines) + "\n")
    assert [r.line for r in good] == [1, 6]
    assert [(m.line, m.error) for m in bad] == [
        (2, "expected 21 pipe-separated fields, found 5"),
        (3, "TRANSACTION_AMT is not a number: '12abc'"),
        (4, "TRANSACTION_DT is not a date (MMDDYYYY): '13452024'"),
    ]
    assert all(str(m).startswith(f"test:{m.line}: ") for m in bad)


CRM = """Donor Id,Full Name,Gift Amount,Gift Date,Company,Job,Town,St,Postcode,Country
D1,"Smith, Robert","$1,250.00",2024-03-14,Acme,Engineer,Washington,DC,20001,USA
D2,Jane Doe,(25.00),3/15/2024,,,"Springfield",IL,62701,
D3,Broken Row,oops,2024-03-16,,,,,,
D4,"Two
Lines",10,2024-03-17,,,Austin,TX,73301,
"""
MAPPING = {
    "donor_id": "Donor Id",
    "name": "Full Name",
    "amount": "Gift Amount",
    "date": "Gift Date",
    "employer": "Company",
    "occupation": "Job",
    "city": "Town",
    "state": "St",
    "zip": "Postcode",
    "country": "Country",
}


def test_csv_with_a_column_mapping() -> None:
    data = CRM.encode()
    fmt = detect_format(data, columns=MAPPING)
    assert fmt.kind == "csv" and fmt.data_line == 2
    items = list(read_rows(data[fmt.data_offset :].decode(), fmt, start_line=fmt.data_line, source="crm.csv"))
    good = [i for i in items if isinstance(i, Contribution)]
    bad = [i for i in items if isinstance(i, MalformedRow)]
    assert [(r.donor_id, r.name, r.amount_usd, r.date, r.line) for r in good] == [
        ("D1", "Smith, Robert", 1250.0, 20240314, 2),
        ("D2", "Jane Doe", -25.0, 20240315, 3),
        ("D4", "Two\nLines", 10.0, 20240317, 5),
    ]
    assert good[0].id == "2"  # no id column: the line number
    assert [(m.line, m.error) for m in bad] == [(4, "amount is not a number: 'oops'")]


def test_csv_columns_are_found_by_their_usual_names() -> None:
    data = b"first_name,last_name,amount,date,state\nRobert,Smith,10,2024-01-01,DC\n"
    fmt = detect_format(data)
    [row] = [r for r in read_rows(data[fmt.data_offset :].decode(), fmt, start_line=2, source="x")]
    assert isinstance(row, Contribution) and row.name == "Smith, Robert"


@pytest.mark.parametrize(
    ("data", "mapping", "message"),
    [
        (b"amount,date\n1,2024-01-01\n", None, "no contributor name column"),
        (b"name,date\nA,2024-01-01\n", None, "no amount column"),
        (b"name,amount\nA,1\n", {"name": "Nope"}, r"column 'Nope' \(for name\) is not in the header: name, amount"),
        (b"name,amount\nA,1\n", {"colour": "name"}, "unknown field 'colour'"),
        (b"\nname,amount\n", None, "the CSV file has no header line"),
    ],
)
def test_unusable_csv_files_are_one_line_errors(data: bytes, mapping: dict[str, str] | None, message: str) -> None:
    with pytest.raises(FormatError, match=message) as e:
        detect_format(data, kind="csv", columns=mapping)
    assert "\n" not in str(e.value)


def test_chunks_split_at_row_boundaries_and_keep_line_numbers() -> None:
    lines = [fec_line(str(i), f"N{i}, A") for i in range(1, 101)]
    data = ("\n".join(lines) + "\n").encode()
    fmt = detect_format(data)
    chunks = split_chunks(data, fmt, 7)
    assert len(chunks) > 10 and sum(c.rows for c in chunks) == 100
    seen = []
    for ch in chunks:
        for r in read_rows(decode(data[ch.start : ch.end]), fmt, start_line=ch.line, source="x"):
            assert isinstance(r, Contribution)
            seen.append((r.id, r.line))
    assert seen == [(str(i), i) for i in range(1, 101)]


def test_csv_chunks_never_cut_a_quoted_newline() -> None:
    header = "name,amount,date\n"
    rows = [f'"Person {i}\nsecond line",{i},2024-01-01\n' for i in range(50)]
    data = (header + "".join(rows)).encode()
    fmt = detect_format(data)
    got = []
    for ch in split_chunks(data, fmt, 3):
        got += list(read_rows(decode(data[ch.start : ch.end]), fmt, start_line=ch.line, source="x"))
    assert all(isinstance(r, Contribution) for r in got)
    assert [(r.line, r.amount_usd) for r in got] == [(2 + 2 * i, float(i)) for i in range(50)]  # type: ignore[union-attr]


def test_latin1_files_are_read() -> None:
    data = fec_line("1", "MU\xd1OZ, JOS\xc9").encode("latin-1")
    assert "MUÑOZ" in decode(data)


@given(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 12, 31)))
def test_dates_in_every_accepted_spelling(d: datetime.date) -> None:
    y, m, day = d.year, d.month, d.day
    want = y * 10000 + m * 100 + day
    assert parse_date(f"{m:02d}{day:02d}{y:04d}") == want
    assert parse_date(f"{y:04d}-{m:02d}-{day:02d}") == want
    assert parse_date(f"{m}/{day}/{y}") == want


@pytest.mark.parametrize("bad", ["2024-13-01", "1/2", "abc", "00002024", "02312024", "2023-02-29"])
def test_bad_dates_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_date(bad)


def test_amounts() -> None:
    assert parse_amount("1,250.50") == 1250.5 and parse_amount("(10)") == -10.0 and parse_amount("$5") == 5.0
    for bad in ("", "nan", "inf", "1e", "$"):
        with pytest.raises(ValueError):
            parse_amount(bad)
