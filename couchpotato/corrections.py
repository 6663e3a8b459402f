"""Corrections: a table of regular expressions that fix what the model still gets wrong.

A corrections file is TOML::

    # applied in order, case-insensitive unless case_sensitive = true
    case_sensitive = false

    [replace]
    "may repeat what a good join" = "Mayor Pete Buttigieg"
    '\\bclover char\\b' = "Klobuchar"

Corrections apply to a committed segment's words, not only its text: a match that spans several
words is replaced by the new words, spread over the time the old ones took, so the word timings
that search and subtitles use stay true.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .records import Word


@dataclass(frozen=True)
class Corrections:
    """An ordered list of (pattern, replacement) rules."""

    rules: tuple[tuple[re.Pattern[str], str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    @classmethod
    def from_mapping(cls, table: dict[str, Any], *, case_sensitive: bool = False) -> Corrections:
        flags = 0 if case_sensitive else re.IGNORECASE
        rules = []
        for pattern, replacement in table.items():
            if not isinstance(replacement, str):
                raise ConfigError(f"correction for {pattern!r} must be a string")
            try:
                rules.append((re.compile(pattern, flags), replacement))
            except re.error as e:
                raise ConfigError(f"invalid regular expression {pattern!r}: {e}") from e
        return cls(tuple(rules))

    @classmethod
    def load(cls, path: str | Path) -> Corrections:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"corrections file not found: {path}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read corrections file {path}: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"corrections file {path} is not valid TOML: {e}") from e
        table = data.get("replace", {})
        if not isinstance(table, dict):
            raise ConfigError(f"[replace] in {path} must be a table of pattern = replacement")
        return cls.from_mapping(table, case_sensitive=bool(data.get("case_sensitive", False)))

    def apply_text(self, text: str) -> str:
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text

    def apply(self, words: list[Word]) -> list[Word]:
        """Apply every rule to the words' text, keeping timings for what did not change."""
        for pattern, replacement in self.rules:
            words = _apply_rule(words, pattern, replacement)
        return words


def _apply_rule(words: list[Word], pattern: re.Pattern[str], replacement: str) -> list[Word]:
    text = "".join(w.word for w in words)
    new_text = pattern.sub(replacement, text)
    if new_text == text:
        return words
    old_tokens = [w.word.strip() for w in words]
    new_tokens = re.findall(r"\s*\S+", new_text)
    matcher = difflib.SequenceMatcher(None, old_tokens, [t.strip() for t in new_tokens], autojunk=False)
    out: list[Word] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [replace(w, word=new_tokens[j1 + k]) for k, w in enumerate(words[i1:i2])]
        elif op in ("replace", "insert"):
            if i2 > i1:
                old = words[i1:i2]
            else:  # pure insertion: a zero-length span where it goes
                t = words[i1 - 1].end if i1 else words[0].start
                old = [Word(t, t, "", 1.0)]
            out += _spread("".join(new_tokens[j1:j2]), old)
    return out


def _spread(text: str, old: list[Word]) -> list[Word]:
    """New words for ``text`` (tokens keep their leading space) over the time ``old`` took."""
    tokens = re.findall(r"\s*\S+", text)
    if not tokens:
        return []
    start, end = old[0].start, old[-1].end
    probability = min(w.probability for w in old)
    total = sum(len(t.strip()) for t in tokens)
    out, t = [], start
    for tok in tokens:
        share = (end - start) * len(tok.strip()) / total
        out.append(Word(round(t, 3), round(t + share, 3), tok, probability))
        t += share
    return out


__all__ = ["Corrections"]
