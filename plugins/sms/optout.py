"""Opt-out and opt-in keywords of inbound texts.

A reply opts out when, after case folding, trimming and dropping punctuation, it *is* one of the
keywords ("STOP", "stop.", " Stop! ") or matches one of the phrase patterns ("remove me",
"please remove me from this list"). A reply that merely contains "stop" inside a sentence ("don't
stop texting me about the rally") is not an opt-out: carriers match the whole message too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE")
OPT_OUT_PATTERNS = (r"\bremove me\b", r"\bunsubscribe\b", r"\bstop texting\b", r"\bdo not (text|contact) me\b")
OPT_IN_KEYWORDS = ("START", "UNSTOP", "YES", "SUBSCRIBE")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class KeywordRules:
    """Which replies opt out or back in.

    Attributes:
        opt_out: whole-message keywords that opt out (any case, punctuation ignored).
        patterns: regular expressions searched in the folded message that opt out.
        opt_in: whole-message keywords that undo an opt-out (audited).
    """

    opt_out: tuple[str, ...] = OPT_OUT_KEYWORDS
    patterns: tuple[str, ...] = OPT_OUT_PATTERNS
    opt_in: tuple[str, ...] = OPT_IN_KEYWORDS
    _out: frozenset[str] = field(init=False, repr=False, compare=False)
    _in: frozenset[str] = field(init=False, repr=False, compare=False)
    _re: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_out", frozenset(_fold(k) for k in self.opt_out))
        object.__setattr__(self, "_in", frozenset(_fold(k) for k in self.opt_in))
        object.__setattr__(self, "_re", tuple(re.compile(p, re.IGNORECASE) for p in self.patterns))

    @classmethod
    def of(cls, opt_out: Iterable[str] | None = None, patterns: Iterable[str] | None = None) -> KeywordRules:
        return cls(
            opt_out=tuple(opt_out) if opt_out is not None else OPT_OUT_KEYWORDS,
            patterns=tuple(patterns) if patterns is not None else OPT_OUT_PATTERNS,
        )

    def is_opt_out(self, body: str) -> bool:
        folded = _fold(body)
        return folded in self._out or any(p.search(folded) for p in self._re)

    def is_opt_in(self, body: str) -> bool:
        return _fold(body) in self._in


__all__ = ["OPT_IN_KEYWORDS", "OPT_OUT_KEYWORDS", "OPT_OUT_PATTERNS", "KeywordRules"]
