"""Blocking never blocks away a true match written in any of the variants the issue lists: order
("LAST, FIRST" vs "First Last"), case, accents, punctuation, honorifics and suffixes, middle names
and initials, common nicknames (and a first name given as an initial). Property-based: hypothesis
writes the person and the variant; the entry must reach the scorer and score at least the floor."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.vetting import constants as c
from plugins.vetting.blocking import SurnameBlocker, one_deletes
from plugins.vetting.names import parse_person_name
from plugins.vetting.names_data import HONORIFICS, NICKNAMES, PARTICLES, SUFFIXES

from .conftest import index_of

FIRSTS = [*sorted(NICKNAMES), "xiomara", "anand", "siobhan", "wei", "joan", "maria", "mary"]
NOT_SURNAMES = HONORIFICS | SUFFIXES | PARTICLES | {"and", "mr", "mrs", "ms", "miss", "mx", "dr", "rev", "hon"}
ACCENTS = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç"}

surnames = st.from_regex(r"[a-z]{2,12}", fullmatch=True).filter(lambda s: s not in NOT_SURNAMES)
middles = st.one_of(st.just(""), st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda s: s not in NOT_SURNAMES))


@st.composite
def person(draw: st.DrawFn) -> tuple[str, str, str]:
    return draw(st.sampled_from(FIRSTS)), draw(middles), draw(surnames)


@st.composite
def variant(draw: st.DrawFn, first: str, middle: str, last: str) -> str:
    """The person's name as a donor (or a list) might write it."""
    choice = draw(st.sampled_from(["keep", "nickname", "initial"]))
    if choice == "nickname" and NICKNAMES.get(first):
        first = draw(st.sampled_from(NICKNAMES[first]))
    elif choice == "initial":
        first = first[0]
    middle = draw(st.sampled_from([middle, "", middle[:1]])) if middle else draw(st.sampled_from(["", "q"]))
    if draw(st.booleans()):  # accents
        first, last = ("".join(ACCENTS.get(ch, ch) if draw(st.booleans()) else ch for ch in w) for w in (first, last))
    dot = draw(st.sampled_from(["", "."]))

    def part(w: str) -> str:
        return w + dot if len(w) == 1 else w

    given = " ".join(part(w) for w in (first, middle) if w)
    title = draw(st.sampled_from(["", "Mr.", "Dr.", "Mrs", "Hon."]))
    suffix = draw(st.sampled_from(["", "Jr.", "SR", "III", "Esq."]))
    if draw(st.booleans()):
        text = f"{last}{' ' + suffix if suffix else ''}, {given}{' ' + title if title else ''}"
    else:
        text = " ".join(w for w in (title, given, last, suffix) if w)
    case = draw(st.sampled_from(["upper", "lower", "title", "keep"]))
    text = {"upper": text.upper(), "lower": text.lower(), "title": text.title(), "keep": text}[case]
    spaces = draw(st.sampled_from([" ", "  "]))
    return text.replace(" ", spaces)


OTHERS = "Alice Walker\nRobert Smyth\nBob Jones\n"  # other entries on the same list


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), who=person())
def test_a_listed_variant_is_never_blocked_away(data: st.DataObject, who: tuple[str, str, str]) -> None:
    first, middle, last = who
    listed = data.draw(variant(first, middle, last), label="as listed")
    written = data.draw(variant(first, middle, last), label="as written")
    entry_name = parse_person_name(listed)
    name = parse_person_name(written)
    assert entry_name is not None and name is not None
    # blocking: the surname keys meet
    blocker = SurnameBlocker([entry_name.last_keys])
    assert 0 in blocker.candidates(name.last_keys), (listed, written)
    # and the whole matcher (vectorised pre-filter included) keeps the pair at or above the floor
    index = index_of(("list", f'name\n"{listed}"\n{OTHERS}'))
    target = next(i for i, e in enumerate(index.entries) if e.name == listed)
    [found] = index.match_people([name])
    assert target in {m.entry for m in found}, (listed, written, found)
    assert max(m.score for m in found if m.entry == target) >= c.NAME_FLOOR


@given(st.from_regex(r"[a-z]{3,12}", fullmatch=True), st.integers(0, 11), st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
def test_one_edit_in_the_surname_is_never_blocked_away(surname: str, pos: int, letter: str) -> None:
    pos %= len(surname)
    edits = {
        surname[:pos] + letter + surname[pos + 1 :],  # substitution
        surname[:pos] + surname[pos + 1 :],  # deletion
        surname[:pos] + letter + surname[pos:],  # insertion
        surname[:pos] + surname[pos + 1 : pos + 2] + surname[pos : pos + 1] + surname[pos + 2 :],  # transposition
    }
    blocker = SurnameBlocker([(surname,)])
    for edited in edits:
        if len(edited) >= c.MIN_DELETE_LAST_LEN:
            assert 0 in blocker.candidates((edited,)), (surname, edited)


def test_one_deletes() -> None:
    assert one_deletes("abc") == {"bc", "ac", "ab"}


def test_blocking_keeps_unrelated_surnames_apart() -> None:
    blocker = SurnameBlocker([("smith",), ("johnson",), ("garcia",)])
    assert blocker.candidates(("smyth",)) == {0}
    assert blocker.candidates(("williams",)) == set()
