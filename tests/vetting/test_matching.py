"""Matching rules: each way a name can match, each piece of evidence, organisations, keywords, the
common-name adjustment and namesakes on the lists."""

from __future__ import annotations

from plugins.vetting import constants as c
from plugins.vetting.engine import collate, common_name_points, vet_rows
from plugins.vetting.matching import evidence, first_name_score, middle_points
from plugins.vetting.names import parse_person_name
from plugins.vetting.options import VetOptions
from plugins.vetting.records import Contribution, Flag

from .conftest import index_of

LDA = """name,employer,city,state,id,reason
"Robert J. Smith",Acme Strategies LLC,Washington,DC,L1,registered lobbyist
Joan Baker,Capitol Partners,Arlington,VA,L2,registered lobbyist
Xiomara Quisenberry,Quill Advocacy,Washington,DC,L3,registered lobbyist
"""


def contribution(name: str, **kw: object) -> Contribution:
    fields: dict[str, object] = {
        "id": "1",
        "line": 2,
        "name": name,
        "state": "DC",
        "city": "WASHINGTON",
        "zip": "20001",
        "amount_usd": 100.0,
        "date": 20240115,
    }
    fields.update(kw)
    return Contribution(**fields)  # type: ignore[arg-type]


def flags_for(rows: list[Contribution], *lists: tuple[str, str] | tuple[str, str, str], **opts: object) -> list[Flag]:
    index = index_of(*lists) if lists else index_of(("lda", LDA))
    options = VetOptions(**opts)  # type: ignore[arg-type]
    out = vet_rows(rows, index, options)
    return [f for f in collate([out.to_bytes()], [], options.to_dict()).flags if f.list]


def test_first_name_scores() -> None:
    assert first_name_score("robert", "robert") == (1.0, "")
    assert first_name_score("bob", "robert") == (1.0, "nickname bob = robert")
    assert first_name_score("r", "robert")[0] == c.INITIAL_SCORE
    assert first_name_score("b", "robert")[0] == c.INITIAL_SCORE  # B. for Bob
    assert first_name_score("x", "robert")[0] == 0.0
    assert first_name_score("john", "joan")[0] == 0.0  # two known names: different people
    assert first_name_score("roberta", "robert")[0] == 0.0
    assert first_name_score("jhon", "john")[0] >= c.FIRST_NAME_TYPO_MIN  # a typo of a known name
    assert first_name_score("kohn", "john")[0] == 0.0  # typos keep the first letter
    assert first_name_score("", "john")[0] == c.MISSING_FIRST_SCORE


def test_middle_names_agree_conflict_or_say_nothing() -> None:
    assert middle_points(("j",), ("james",))[0] == c.MIDDLE_MATCH_POINTS
    assert middle_points(("k",), ("james",))[0] == c.MIDDLE_CONFLICT_POINTS
    assert middle_points(("john",), ("james",))[0] == c.MIDDLE_CONFLICT_POINTS
    assert middle_points((), ("james",))[0] == 0.0


def test_listed_variants_all_flag_the_entry_with_its_list_and_a_reason() -> None:
    variants = [
        "SMITH, ROBERT J",
        "SMITH, BOB",
        "Dr. Robert Smith Jr.",
        "SMITH, R J",
        "Bob J. Smith",
        "SMYTH, ROBERT J",
        "SMITH, ROBRET J",
        "Róbert Smith",
    ]
    rows = [contribution(v, id=str(i), employer="ACME STRATEGIES") for i, v in enumerate(variants)]
    flags = flags_for(rows)
    assert sorted(int(f.contribution_id) for f in flags) == list(range(len(variants)))
    for f in flags:
        assert (f.rule, f.list, f.matched_name, f.subject_key) == ("watchlist_name", "lda", "Robert J. Smith", "lda:L1")
        assert f.reason.startswith("name ") and "Jaro-Winkler to 'Robert J. Smith' on lda" in f.reason
        assert "employer matches" in f.reason and "[registered lobbyist]" in f.reason
        assert "\n" not in f.reason


def test_look_alikes_are_not_flagged() -> None:
    rows = [
        contribution("SMITH, ROBERTA", id="1"),  # another given name
        contribution("BAKER, JOHN", id="2", state="VA", city="ARLINGTON"),  # Joan ≠ John
        contribution("SMITH, ROBERT K", id="3", state="CA", city="FRESNO"),  # middle initial, elsewhere
        contribution("SMITH, ROBERT J", id="4", state="CA", city="FRESNO", employer="FRESNO FARMS"),  # namesake
        contribution("SMOOT, ROBERT J", id="5"),  # surname two edits away
    ]
    assert flags_for(rows) == []


def test_evidence_moves_the_score() -> None:
    idx = index_of(("lda", LDA))
    entry = idx.entries[0]
    assert entry.name == "Robert J. Smith"

    def points(**kw: str) -> float:
        args = {"employer_norm": "", "state": "", "city_norm": "", "occupation_norm": ""} | kw
        ev = evidence(entry, **args)  # type: ignore[arg-type]
        assert ev is not None
        return ev.points

    assert points() == 0.0
    assert points(employer_norm="acme strategies") == c.EMPLOYER_MATCH_POINTS
    assert points(employer_norm="fresno farms") == c.EMPLOYER_MISMATCH_POINTS
    assert points(employer_norm="retired") == 0.0  # generic employers count neither way
    assert points(state="DC", city_norm="washington") == c.CITY_MATCH_POINTS
    assert points(state="MD") == c.STATE_NEIGHBOUR_POINTS
    assert points(state="CA") == c.STATE_MISMATCH_POINTS
    with_need = evidence(entry, employer_norm="", state="CA", city_norm="", occupation_norm="", need=0.5)
    assert with_need is None  # cannot reach what it needs: the slower comparisons are skipped


def test_a_rare_name_is_flagged_on_the_name_alone_but_a_common_one_needs_evidence() -> None:
    # 400 donors named Smith and 400 named Robert make "Robert Smith" common in this file
    crowd = [
        contribution(f"SMITH, {first}", id=f"s{i}", zip=f"{10000 + i}", state="TX", city="AUSTIN")
        for i, first in enumerate(["ALAN", "BRIAN", "CARL", "DEAN"] * 100)
    ]
    crowd += [
        contribution(f"{last}, ROBERT", id=f"r{i}", zip=f"{20000 + i}", state="TX", city="AUSTIN")
        for i, last in enumerate(["JONES", "BROWN", "DAVIS", "MOORE"] * 100)
    ]
    rare = contribution("QUISENBERRY, XIOMARA", id="rare", state="", city="", employer="")
    common = contribution("SMITH, ROBERT", id="common", state="", city="", employer="")
    common_with_evidence = contribution("SMITH, ROBERT", id="common+", zip="20002", employer="ACME STRATEGIES")
    flags = flags_for([*crowd, rare, common, common_with_evidence])
    ids = {f.contribution_id for f in flags}
    assert ids == {"rare", "common+"}
    assert common_name_points(400, 400, 800) == c.COMMON_NAME_MAX_POINTS
    assert common_name_points(1, 1, 800) == 0.0 and common_name_points(2, 2, 800) < 0.01


def test_namesakes_on_the_lists_the_evidence_points_to_one() -> None:
    lists = """name,employer,city,state,id
Robert Smith,Acme Strategies,Washington,DC,A
Robert Smith,Zenith Group,Washington,DC,B
Robert Smith,Other Firm,Washington,DC,C
"""
    one = flags_for([contribution("SMITH, ROBERT", employer="ZENITH GROUP")], ("lda", lists))
    assert [f.subject_key for f in one] == ["lda:B"]
    # without anything to tell them apart, every namesake on the lists is shown
    all_three = flags_for([contribution("SMITH, ROBERT", employer="RETIRED")], ("lda", lists))
    assert sorted(f.subject_key for f in all_three) == ["lda:A", "lda:B", "lda:C"]


def test_organisations_match_employers_and_organisation_contributors() -> None:
    orgs = "name\nExxon Mobil Corporation\nChevron Corp\nAmerican Petroleum Institute\n"
    rows = [
        contribution("DOE, JANE", id="1", employer="EXXONMOBIL CORP"),
        contribution("DOE, JOHN", id="2", employer="Chevron U.S.A. Inc."),
        contribution("AMERICAN PETROLEUM INSTITUTE", id="3", entity_type="ORG", committee="C1"),
        contribution("ROE, RICHARD", id="4", employer="AMERICAN UNIVERSITY"),
    ]
    flags = flags_for(rows, ("blocked", orgs, "organization"))
    by_id = {f.contribution_id: f for f in flags}
    assert set(by_id) == {"1", "2", "3"}
    assert by_id["1"].rule == "watchlist_organization" and by_id["1"].matched_name == "Exxon Mobil Corporation"
    assert "employer 'EXXONMOBIL CORP' matches" in by_id["1"].reason
    assert by_id["3"].reason.startswith("contributor 'AMERICAN PETROLEUM INSTITUTE' matches")


def test_keywords_flag_industries_in_employer_or_occupation() -> None:
    words = "name,reason\noil and gas,fossil fuels\ntobacco,\n"
    rows = [
        contribution("DOE, JANE", id="1", employer="Big Oil & Gas LLC"),
        contribution("DOE, JOHN", id="2", employer="SELF", occupation="TOBACCO FARMER"),
        contribution("ROE, RICHARD", id="3", employer="OILY RAGS INC"),
    ]
    flags = flags_for(rows, ("refused", words, "keyword"))
    assert {(f.contribution_id, f.rule) for f in flags} == {("1", "refused_industry"), ("2", "refused_industry")}
    assert any("contains 'oil and gas'" in f.reason and "[fossil fuels]" in f.reason for f in flags)


def test_thresholds_and_disabled_rules_are_options() -> None:
    row = contribution("SMITH, R", employer="", state="", city="")
    assert [f.score for f in flags_for([row])] == [0.95]  # an initial (0.90) with the surname (1.0)
    assert not flags_for([row], match_threshold=0.96, name_floor=0.75)
    assert not flags_for([row], disabled_rules=("watchlist_name",))


def test_score_name_explains_a_pair() -> None:
    idx = index_of(("lda", LDA))
    name = parse_person_name("SMITH, BOB")
    assert name is not None
    m = idx.score_name(name, 0)
    assert m.score == 1.0 and m.notes == ("nickname bob = robert",)
