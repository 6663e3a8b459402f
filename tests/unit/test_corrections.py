from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from couchpotato.corrections import Corrections
from couchpotato.errors import ConfigError
from couchpotato.records import Word, join_words


def words(*spec: tuple[float, float, str]) -> list[Word]:
    return [Word(a, b, w, 0.9) for a, b, w in spec]


def test_multi_word_match_is_spread_over_the_old_span(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[replace]\n"may repeat what a good join" = "Mayor Pete Buttigieg"\n')
    ws = words(
        (0, 0.5, " May"),
        (0.5, 1, " repeat"),
        (1, 1.5, " what"),
        (1.5, 2, " a"),
        (2, 2.2, " good"),
        (2.2, 2.8, " join"),
        (3, 3.4, " said."),
    )
    out = Corrections.load(f).apply(ws)
    assert join_words(out) == "Mayor Pete Buttigieg said."
    assert out[0].start == 0 and out[2].end == 2.8 and out[3].start == 3
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(out))


def test_case_insensitive_by_default_and_regex_groups() -> None:
    c = Corrections.from_mapping({r"\bclover char\b": "Klobuchar", r"(\w+) dot com": r"\1.com"})
    ws = words(
        (0, 1, " Senator"),
        (1, 1.5, " Clover"),
        (1.5, 2, " char"),
        (2, 3, " visited"),
        (3, 3.5, " example"),
        (3.5, 3.7, " dot"),
        (3.7, 4, " com."),
    )
    assert join_words(c.apply(ws)) == "Senator Klobuchar visited example.com."


def test_unchanged_words_keep_their_timing() -> None:
    ws = words((0, 1, " hello"), (1, 2, " world"))
    assert Corrections.from_mapping({"xyz": "abc"}).apply(ws) == ws


def test_case_sensitive_option(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('case_sensitive = true\n[replace]\n"Bank" = "bank"\n')
    c = Corrections.load(f)
    assert c.apply_text("Bank BANK") == "bank BANK"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[replace]\n'(' = 'x'\n", "invalid regular expression"),
        ("not toml = = =", "not valid TOML"),
        ("[replace]\nx = 3\n", "must be a string"),
        ("replace = 3\n", "must be a table"),
    ],
)
def test_bad_files_are_one_line_config_errors(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Corrections.load(f)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        Corrections.load("/nonexistent/c.toml")
