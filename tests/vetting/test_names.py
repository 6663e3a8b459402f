"""Name normalisation: order, case, accents, punctuation, honorifics, suffixes, particles, compound
surnames, middle names and initials, nicknames; organisation names."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from plugins.vetting.names import (
    canonical_first,
    first_keys,
    fold,
    initials,
    normalise_org,
    parse_person_name,
)


@pytest.mark.parametrize(
    ("raw", "last", "first", "middles"),
    [
        ("SMITH, ROBERT J MR.", "smith", "robert", ("j",)),
        ("Dr. Robert J. Smith Jr.", "smith", "robert", ("j",)),
        ("robert   smith", "smith", "robert", ()),
        ("SMITH JR, BOB", "smith", "bob", ()),
        ("Robert Smith, Jr.", "smith", "robert", ()),
        ("Smith, Robert James III", "smith", "robert", ("james",)),
        ("R. J. Smith", "smith", "r", ("j",)),
        ("SMITH, R", "smith", "r", ()),
        ("Zoë O'Brien", "obrien", "zoe", ()),
        ("O’BRIEN, ZOE", "obrien", "zoe", ()),
        ("José Muñoz-García", "munozgarcia", "jose", ()),
        ("Juan de la Cruz", "delacruz", "juan", ()),
        ("DE LA CRUZ, JUAN", "delacruz", "juan", ()),
        ("Ludwig van Beethoven", "vanbeethoven", "ludwig", ()),
        ("Mary-Jane Watson", "watson", "maryjane", ()),
        ("Hon. Jane Q. Public, Esq.", "public", "jane", ("q",)),
        ("Łukasz Żółć", "zolc", "lukasz", ()),
        ("Smith", "smith", "", ()),
        ("SMITH, JOHN V", "smith", "john", ("v",)),  # V is a middle initial here, not "the fifth"
        ("John Major", "major", "john", ()),  # a surname that is also a title
        ("MAJOR, JOHN", "major", "john", ()),
        ("Major John Smith", "smith", "john", ()),
        ("Junior Smith", "smith", "junior", ()),
        ("Mr. and Mrs. John Smith", "smith", "john", ()),
        ("John Smith MD", "smith", "john", ()),
    ],
)
def test_person_names_parse_in_either_order(raw: str, last: str, first: str, middles: tuple[str, ...]) -> None:
    p = parse_person_name(raw)
    assert p is not None
    assert (p.last, p.first, p.middles) == (last, first, middles)


@pytest.mark.parametrize("raw", ["", "   ", "Mr.", "Dr. Mrs.", ",", "--"])
def test_names_without_anything_usable_are_none(raw: str) -> None:
    assert parse_person_name(raw) is None


def test_compound_surnames_carry_their_parts_as_alternatives() -> None:
    hyphen = parse_person_name("GARCIA-LOPEZ, MARIA")
    spaced = parse_person_name("Maria Garcia Lopez")
    single = parse_person_name("Maria Garcia")
    assert hyphen is not None and spaced is not None and single is not None
    assert hyphen.last_keys == ("garcialopez", "garcia", "lopez")
    assert spaced.last == "lopez" and "garcialopez" in spaced.last_keys
    assert set(hyphen.last_keys) & set(spaced.last_keys)
    assert set(hyphen.last_keys) & set(single.last_keys)


@pytest.mark.parametrize(
    ("nick", "canonical"),
    [
        ("bob", "robert"),
        ("bill", "william"),
        ("peggy", "margaret"),
        ("dick", "richard"),
        ("ted", "edward"),
        ("liz", "elizabeth"),
        ("robert", "robert"),
    ],
)
def test_nicknames_know_their_canonical_names(nick: str, canonical: str) -> None:
    assert canonical in first_keys(nick)
    assert canonical_first(nick) == canonical


def test_ambiguous_nicknames_keep_every_reading() -> None:
    assert {"albert", "alan", "alfred", "alexander"} <= first_keys("al")
    assert {"christopher", "christine", "christina"} <= first_keys("chris")
    assert "joan" not in first_keys("john") and "john" not in first_keys("joan")


def test_initials_include_the_nicknames_initials() -> None:
    assert initials("robert") >= {"r", "b"}  # Robert, Bob
    assert initials("william") >= {"w", "b"}  # William, Bill
    assert initials("joan") == {"j"}
    assert initials("") == frozenset()


def test_organisations_lose_punctuation_the_and_corporate_words() -> None:
    assert normalise_org("The Exxon-Mobil Corp., Inc.") == "exxon mobil"
    assert normalise_org("EXXONMOBIL CORPORATION") == "exxonmobil"
    assert normalise_org("Smith & Jones LLP") == "smith and jones"
    assert normalise_org("Inc") == "inc"  # never empty
    assert normalise_org("Chevron U.S.A. Inc.") == "chevron"
    assert normalise_org("A B C Plumbing") == "abc plumbing"


@example("ᴬda")  # a modifier capital: NFKC makes it "A", so lower-casing comes after
@given(st.text(max_size=40))
def test_fold_is_lower_ascii_single_spaced_and_idempotent(s: str) -> None:
    f = fold(s)
    assert f.isascii() and f == f.lower() and "  " not in f and f == f.strip()
    assert fold(f) == f


@given(st.text(max_size=40))
def test_parsing_never_fails_and_yields_ascii_parts(s: str) -> None:
    p = parse_person_name(s)
    if p is not None:
        assert p.last and p.last.isascii() and p.first.isascii()
        assert p.last == p.last_keys[0]
