"""FEC rules, each on its own: aggregate over the limit per donor per election (memos excluded,
refunds netted), organisation contributions to candidate committees, missing required fields over
the itemisation threshold, a missing name, foreign addresses; limits and thresholds as options."""

from __future__ import annotations

from plugins.vetting.engine import collate, vet_rows
from plugins.vetting.options import VetOptions
from plugins.vetting.records import Flag

from .conftest import fec_line, index_of, rows_of

EMPTY = index_of(("none", "name\n"))


def run(lines: list[str], **opts: object) -> list[Flag]:
    rows, bad = rows_of("\n".join(lines) + "\n")
    assert bad == []
    options = VetOptions(**opts)  # type: ignore[arg-type]
    out = vet_rows(rows, EMPTY, options)
    return collate([out.to_bytes()], [], options.to_dict()).flags


def by_rule(flags: list[Flag], rule: str) -> list[Flag]:
    return [f for f in flags if f.rule == rule]


def test_aggregate_over_the_limit_is_flagged_once_on_the_contribution_that_crossed_it() -> None:
    flags = run(
        [
            fec_line("1", "DOE, JANE", 2000, "01102024"),
            fec_line("2", "DOE, JANE", 1000, "02102024"),
            fec_line("3", "DOE, JANE", 600, "03102024"),  # 3,600 > 3,500
            fec_line("4", "DOE, JANE", 100, "04102024"),
            fec_line("5", "DOE, JANE", 3000, "01102024", pgi="G2024"),  # another election
        ]
    )
    [f] = by_rule(flags, "over_limit")
    assert (f.contribution_id, f.donor_key, f.subject_key) == ("3", "doe|jane|20001", "over_limit")
    assert "aggregate $3,700.00" in f.reason and "election P2024" in f.reason and "$3,500.00 limit" in f.reason
    assert "4 contributions" in f.reason and "from 2024-03-10" in f.reason


def test_rows_are_ordered_by_date_not_by_file_order() -> None:
    flags = run(
        [
            fec_line("late", "DOE, JANE", 600, "12102024"),
            fec_line("early", "DOE, JANE", 3000, "01102024"),
        ]
    )
    assert [f.contribution_id for f in by_rule(flags, "over_limit")] == ["late"]


def test_memos_do_not_count_and_refunds_are_netted() -> None:
    flags = run(
        [
            fec_line("1", "DOE, JANE", 3000, "01102024"),
            fec_line("2", "DOE, JANE", 3000, "01112024", memo="X"),  # earmark memo: not counted
            fec_line("3", "DOE, JANE", 1000, "02102024"),  # 4,000: over
            fec_line("4", "DOE, JANE", 600, "03102024", tx="22Y"),  # refund of 600: 3,400, no longer over
        ]
    )
    assert by_rule(flags, "over_limit") == []
    negative_refund = run(
        [
            fec_line("1", "DOE, JANE", 3000, "01102024"),
            fec_line("2", "DOE, JANE", 1000, "02102024"),
            fec_line("3", "DOE, JANE", -400, "03102024"),  # a negative amount (redesignation): 3,600
        ]
    )
    [f] = by_rule(negative_refund, "over_limit")
    assert f.contribution_id == "2" and "$3,600.00" in f.reason


def test_the_limit_is_per_committee_and_per_donor() -> None:
    flags = run(
        [
            fec_line("1", "DOE, JANE", 3000),
            fec_line("2", "DOE, JANE", 3000, committee="C00000002"),
            fec_line("3", "DOE, JOHN", 3000),
            fec_line("4", "DOE, JANE", 3000, zip_code="10001"),  # another Jane Doe
        ]
    )
    assert by_rule(flags, "over_limit") == []


def test_limit_is_an_option() -> None:
    lines = [fec_line("1", "DOE, JANE", 3000), fec_line("2", "DOE, JANE", 400)]
    assert by_rule(run(lines), "over_limit") == []
    assert [f.contribution_id for f in by_rule(run(lines, contribution_limit_usd=3300.0), "over_limit")] == ["2"]


def test_candidates_own_money_and_organisations_are_not_held_to_the_individual_limit() -> None:
    flags = run([fec_line("1", "DOE, JANE", 9000, entity="CAN"), fec_line("2", "PAC OF X", 9000, entity="PAC")])
    assert by_rule(flags, "over_limit") == []


def test_organisation_contributions_to_a_candidate_committee() -> None:
    lines = [fec_line("1", "ACME CORP", 500, entity="ORG"), fec_line("2", "SOME PAC", 500, entity="PAC")]
    [f] = by_rule(run(lines), "organization_contribution")
    assert f.contribution_id == "1" and "ENTITY_TP ORG" in f.reason and "C00000001" in f.reason
    # only candidate committees count, when the run says which they are
    assert by_rule(run(lines, candidate_committee_ids=("C00000009",)), "organization_contribution") == []
    assert by_rule(run(lines, disabled_rules=("organization_contribution",)), "organization_contribution") == []


def test_missing_fields_over_the_itemisation_threshold() -> None:
    flags = run(
        [
            fec_line("1", "DOE, JANE", 150, "01102024", employer="", occupation=""),  # 150: under the threshold
            fec_line("2", "DOE, JANE", 100, "02102024", employer="", occupation=""),  # 250: over, missing both
            fec_line("3", "DOE, JANE", 100, "03102024", employer="ACME", occupation="INFORMATION REQUESTED"),
            fec_line("4", "ROE, RICHARD", 500, city="", state="", zip_code=""),
            fec_line("5", "POE, EDGAR", 500),  # complete
            fec_line("6", "", 20),  # no name at all
        ]
    )
    got = {f.contribution_id: f.reason for f in by_rule(flags, "missing_fields")}
    assert set(got) == {"2", "3", "4", "6"}
    assert got["2"].startswith("missing employer, occupation with an aggregate of $250.00")
    assert got["3"].startswith("missing occupation with an aggregate of $350.00")
    assert got["4"].startswith("missing city, state, ZIP")
    assert got["6"].startswith("no contributor name")
    higher = run([fec_line("2", "DOE, JANE", 250, employer="")], itemization_threshold_usd=300.0)
    assert by_rule(higher, "missing_fields") == []


def test_foreign_addresses() -> None:
    flags = run(
        [
            fec_line("1", "DOE, JANE", city="LONDON", state="ZZ", zip_code=""),
            fec_line("2", "DOE, JOHN", city="TORONTO", state="ON", zip_code="M5V"),
            fec_line("3", "DOE, JIM", city="SAN JUAN", state="PR", zip_code="00901"),  # a US territory
            fec_line("4", "DOE, JOE", city="PARIS", state="ZZ", memo="X"),  # memo entries are not receipts
        ]
    )
    assert sorted(f.contribution_id for f in by_rule(flags, "foreign_address")) == ["1", "2"]


def test_each_fec_flag_has_the_columns_reviewers_need() -> None:
    [f] = by_rule(run([fec_line("77", "ACME CORP", 500, entity="ORG")]), "organization_contribution")
    assert (f.contribution_id, f.line, f.score, f.list, f.matched_name, f.amount_usd, f.date) == (
        "77",
        1,
        1.0,
        "",
        "",
        500.0,
        20240115,
    )
