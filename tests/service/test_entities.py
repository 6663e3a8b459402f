"""Entities of committed segments as search facets: the offline rules, the Elasticsearch facets and
filters through the API (the stand-in of tests/es_standin.py), and AWS Comprehend driven by the real
boto3 over HTTP against a stand-in of its ``BatchDetectEntities`` (moto has no Comprehend
``DetectEntities``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from couchpotato.records import TranscriptEvent
from katopotato.entities import ComprehendExtractor, extract_rules, extractor_from_url
from katopotato.errors import ConfigError
from katopotato.search.elasticsearch import ElasticsearchSearch
from katopotato.sessions import SessionSpec, SessionStore

from .test_search import standin

pytestmark = pytest.mark.timeout(60)

DEBATES = [
    [
        "Mayor Pete Buttigieg spoke first, about South Bend and the Federal Reserve Board.",
        "Senator Warren answered that Iowa farmers need more than NASA contracts.",
    ],
    [
        "Pete Buttigieg was asked about Chicago and the City Council budget.",
        "The moderator thanked the University of Iowa for the hall.",
    ],
    [
        "Nobody mentioned anyone by name in this part of the debate.",
        "Later Pete Buttigieg returned to the budget of Acme Corporation in Texas.",
    ],
]


@pytest.mark.parametrize(
    ("text", "people", "places", "organisations"),
    [
        (DEBATES[0][0], ["Pete Buttigieg"], ["South Bend"], ["Federal Reserve Board"]),
        (DEBATES[0][1], ["Warren"], ["Iowa"], ["NASA"]),
        (DEBATES[1][0], ["Pete Buttigieg"], ["Chicago"], ["City Council"]),
        (
            "Dr. Jane Smith of Harvard University said the US economy grew.",
            ["Jane Smith"],
            ["United States"],
            ["Harvard University"],
        ),
        ("Reading the report. Nice work, said the reporter.", [], [], []),  # cities, but words here
        ("the new library will be published next month", [], [], []),
    ],
)
def test_rules(text: str, people: list[str], places: list[str], organisations: list[str]) -> None:
    found = extract_rules(text)
    assert (found["people"], found["places"], found["organisations"]) == (people, places, organisations)


def test_the_extractor_is_chosen_by_url() -> None:
    assert extractor_from_url("rules://").name == "rules" and extractor_from_url("none://").name == "none"
    with pytest.raises(ConfigError, match="COUCHPOTATO_ENTITIES"):
        extractor_from_url("spacy://en")


async def test_facets_and_entity_filters_through_the_api(make_service: Callable[..., Any]) -> None:
    async with standin() as (url, _), make_service(search_url=f"{url}/kp") as r:
        search = r.service.search
        assert isinstance(search, ElasticsearchSearch)
        store: SessionStore = r.service.store
        ids = []
        for n, texts in enumerate(DEBATES):
            spec = SessionSpec(url=f"https://example.org/debate{n}.mp3", title=f"Debate {n + 1}")
            await store.create(spec, source_kind="http", source_reason="test")
            for seq, text in enumerate(texts):
                await store.record(
                    spec.id, TranscriptEvent(spec.id, seq, seq * 4.0, seq * 4 + 4, text, (), time.time())
                )
            ids.append(spec.id)
        await search.sync()
        status, found = await r.get("/v1/search?q=budget")
        assert status == 200, found
        assert {(h["session"], h["seq"]) for h in found["hits"]} == {(ids[1], 0), (ids[2], 1)}
        assert found["facets"]["people"] == [{"name": "Pete Buttigieg", "count": 2}]
        assert {f["name"] for f in found["facets"]["places"]} == {"Chicago", "Texas"}
        # every mention of Buttigieg in the three debates
        status, found = await r.get("/v1/search?q=buttigieg&person=Pete%20Buttigieg")
        assert [(h["session"], h["seq"]) for h in found["hits"]] == [(ids[2], 1), (ids[1], 0), (ids[0], 0)]
        status, found = await r.get(f"/v1/search?q=pete&person=Pete%20Buttigieg&place=Chicago&session={ids[1]}")
        assert [(h["session"], h["seq"]) for h in found["hits"]] == [(ids[1], 0)]
        status, found = await r.get("/v1/search?q=iowa&organisation=NASA")
        assert [(h["session"], h["seq"]) for h in found["hits"]] == [(ids[0], 1)]
        assert found["facets"]["organisations"] == [{"name": "NASA", "count": 1}]


async def test_entity_filters_need_elasticsearch(running: Any) -> None:
    status, body = await running.get("/v1/search?q=budget&person=Pete%20Buttigieg")
    assert status == 400 and body["error"]["code"] == "invalid_query"
    assert "Elasticsearch" in body["error"]["message"]
    status, body = await running.get("/v1/search?q=budget")
    assert status == 200 and body["facets"] == {}


@pytest.fixture
async def comprehend(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stand-in of Comprehend's JSON protocol: BatchDetectEntities finds the names it knows."""
    known = {"Pete Buttigieg": "PERSON", "South Bend": "LOCATION", "NASA": "ORGANIZATION", "Tuesday": "DATE"}
    calls: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        body = json.loads(await request.read())
        calls.append({"target": target, **body})
        if target != "Comprehend_20171127.BatchDetectEntities" or len(body["TextList"]) > 25:
            return web.json_response({"__type": "InvalidRequestException", "message": "bad"}, status=400)
        results = []
        for i, text in enumerate(body["TextList"]):
            entities = [
                {
                    "Type": kind,
                    "Text": name,
                    "Score": 0.99,
                    "BeginOffset": text.index(name),
                    "EndOffset": text.index(name) + len(name),
                }
                for name, kind in known.items()
                if name in text
            ]
            results.append({"Index": i, "Entities": entities})
        return web.json_response({"ResultList": results, "ErrorList": []}, content_type="application/x-amz-json-1.1")

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{runner.addresses[0][1]}")
    yield calls
    await runner.cleanup()


async def test_comprehend_through_boto3(comprehend: list[dict[str, Any]]) -> None:
    extractor = extractor_from_url("comprehend://us-east-1")
    assert isinstance(extractor, ComprehendExtractor)
    texts = [DEBATES[0][0], "NASA on Tuesday"] + [f"filler {i}" for i in range(28)]
    found = await extractor.extract(texts)
    assert found[0] == {"people": ["Pete Buttigieg"], "places": ["South Bend"], "organisations": []}
    assert found[1] == {"people": [], "places": [], "organisations": ["NASA"]}  # a DATE is not a facet
    assert all(f == {"people": [], "places": [], "organisations": []} for f in found[2:])
    assert [len(c["TextList"]) for c in comprehend] == [25, 5] and comprehend[0]["LanguageCode"] == "en"


def test_the_setting(tmp_path: Any) -> None:
    from katopotato.settings import Settings

    assert Settings.load({"COUCHPOTATO_DATA_DIR": str(tmp_path)}).entities_url == "rules://"
    env = {"COUCHPOTATO_DATA_DIR": str(tmp_path), "COUCHPOTATO_ENTITIES": "comprehend://eu-west-1"}
    assert Settings.load(env).entities_url == "comprehend://eu-west-1"
    with pytest.raises(ConfigError, match="COUCHPOTATO_ENTITIES"):
        Settings.load({**env, "COUCHPOTATO_ENTITIES": "spacy://en"})
