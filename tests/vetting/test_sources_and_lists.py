"""Sources (a path, an HTTP(S) URL, S3 through boto3, a blob) and watchlist files (CSV, JSON, JSON
lines) with their malformed entries; reviewer decisions kept in the blob store."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from katopotato.blobs import FileBlobStore
from plugins.vetting.decisions import decision_blob_key, load_decisions, make_decision, save_decision
from plugins.vetting.engine import collate, vet_rows
from plugins.vetting.errors import DecisionError, FormatError, SourceError
from plugins.vetting.options import VetOptions
from plugins.vetting.sources import read_source
from plugins.vetting.watchlists import WatchlistSpec, parse_watchlist, split_watchlist

from .conftest import fec_line, index_of, rows_of


async def test_a_path_and_a_file_url(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes(b"hello")
    assert await read_source(str(p)) == b"hello"
    assert await read_source(p.as_uri()) == b"hello"
    with pytest.raises(SourceError, match=r"cannot read .*missing\.txt: No such file or directory"):
        await read_source(str(tmp_path / "missing.txt"))
    with pytest.raises(SourceError, match="unsupported source"):
        await read_source("ftp://example.invalid/x")


async def test_an_http_url() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"name\nRobert Smith\n")

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, reason="Not Found")

    app = web.Application()
    app.router.add_get("/list.csv", ok)
    app.router.add_get("/gone.csv", gone)
    async with TestServer(app, host="127.0.0.1") as server:
        assert await read_source(str(server.make_url("/list.csv"))) == b"name\nRobert Smith\n"
        with pytest.raises(SourceError, match="HTTP 404 Not Found"):
            await read_source(str(server.make_url("/gone.csv")))


async def test_an_s3_object_through_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS cannot be reached here: moto's S3 server stands in, driven by the real boto3 over HTTP."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (a dev dependency) is not installed")
    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(k, v)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="fec")
        s3.put_object(Bucket="fec", Key="2024/itcont.txt", Body=b"data")
        assert await read_source(f"s3://fec/2024/itcont.txt?endpoint={endpoint}") == b"data"
        with pytest.raises(SourceError, match="cannot read s3://fec/nope"):
            await read_source(f"s3://fec/nope?endpoint={endpoint}")
    finally:
        server.stop()


async def test_a_blob(tmp_path: Path) -> None:
    async with FileBlobStore(tmp_path) as blobs:
        await blobs.put("uploads/a.csv", b"x")
        assert await read_source("blob:uploads/a.csv", blobs=blobs) == b"x"
        with pytest.raises(SourceError):
            await read_source("blob:uploads/none.csv", blobs=blobs)


def test_csv_watchlist_with_malformed_entries_reported_by_line() -> None:
    text = (
        "name,type,employer,state,list,reason,source_url,id\n"
        "Robert J. Smith,person,Acme,DC,fara,agent of X,https://efile.fara.gov/1,F1\n"
        ",person,,,,,,\n"
        "Exxon Mobil Corp,organization,,,,oil major,,\n"
        "oil and gas,industry,,,,,,\n"
        "Mr.,person,,,,,,\n"
        "Someone,alien,,,,,,\n"
        "too,few\n"
        "Robert J. Smith,person,Acme,DC,fara,agent of X,https://efile.fara.gov/1,F1\n"  # twice: kept once
    )
    entries, bad = parse_watchlist(text.encode(), WatchlistSpec("lists/agents.csv"))
    assert [(e.kind, e.name, e.list, e.key) for e in entries] == [
        ("person", "Robert J. Smith", "fara", "F1"),
        ("organization", "Exxon Mobil Corp", "agents", "exxon mobil"),
        ("keyword", "oil and gas", "agents", "oil and gas"),
    ]
    assert entries[0].source_url == "https://efile.fara.gov/1" and entries[0].subject_key == "fara:F1"
    assert [(m.line, m.error) for m in bad] == [
        (3, "no name"),
        (6, "no usable person name in 'Mr.'"),
        (7, "unknown entry type 'alien' (person, organization or keyword)"),
        (8, "expected 8 columns, found 2"),
    ]


def test_json_and_json_lines_watchlists() -> None:
    doc = {"entries": [{"first_name": "Robert", "last_name": "Smith", "city": "Washington"}, {"city": "x"}, 7]}
    entries, bad = parse_watchlist(json.dumps(doc).encode(), WatchlistSpec("lda.json"))
    assert [e.name for e in entries] == ["Robert Smith"] and entries[0].list == "lda"
    assert [(m.line, m.error) for m in bad] == [(2, "entry 2: no name"), (3, "not a JSON object")]
    lines = b'{"name": "Acme", "type": "company"}\n\n{not json}\n{"name": "Bob Jones"}\n'
    entries, bad = parse_watchlist(lines, WatchlistSpec("x.jsonl", name="block", kind="person"))
    assert [(e.kind, e.name, e.list) for e in entries] == [
        ("organization", "Acme", "block"),
        ("person", "Bob Jones", "block"),
    ]
    assert [m.line for m in bad] == [3]
    with pytest.raises(FormatError):
        parse_watchlist(b'{"something": 1}', WatchlistSpec("x.json"))


def test_a_large_csv_watchlist_is_split_for_the_pool_and_keeps_its_line_numbers() -> None:
    rows = "".join(f'"Person{i}, Name",{"" if i % 1000 else "x,y"}\n' for i in range(40_000))
    data = ("name,employer\n" + rows).encode()
    spec = WatchlistSpec("big.csv")
    pieces = split_watchlist(data, spec, 3, min_bytes=0)
    assert split_watchlist(data, spec, 3) == [(data, 0)]  # small: whole
    assert len(pieces) >= 3
    got, bad = [], []
    for piece, offset in pieces:
        e, b = parse_watchlist(piece, spec, line_offset=offset)
        got += e
        bad += b
    whole, whole_bad = parse_watchlist(data, spec)
    assert [e.name for e in got] == [e.name for e in whole] and len(got) == 39_960
    assert [m.line for m in bad] == [m.line for m in whole_bad] == [2 + i for i in range(0, 40_000, 1000)]


async def test_cleared_decisions_are_not_raised_again(tmp_path: Path) -> None:
    index = index_of(("lda", "name,city,state,id\nRobert Smith,Washington,DC,L1\n"))
    rows, _ = rows_of(fec_line("1", "SMITH, ROBERT") + "\n" + fec_line("2", "SMITH, ROBERT", zip_code="20002") + "\n")
    out = vet_rows(rows, index, VetOptions()).to_bytes()
    first = [f for f in collate([out], [], {}).flags if f.rule == "watchlist_name"]
    assert [(f.contribution_id, f.donor_key, f.subject_key) for f in first] == [
        ("1", "smith|robert|20001", "lda:L1"),
        ("2", "smith|robert|20002", "lda:L1"),
    ]
    async with FileBlobStore(tmp_path) as blobs:
        decision = make_decision("smith|robert|20001", "lda:L1", "cleared", "a different Robert Smith", "ana")
        key = await save_decision(blobs, decision)
        assert key == decision_blob_key("smith|robert|20001", "lda:L1")
        decisions = await load_decisions(blobs)
    later = collate([out], decisions, {})
    assert [f.contribution_id for f in later.flags if f.rule == "watchlist_name"] == ["2"]  # the other donor stays
    assert later.cleared == 1
    with pytest.raises(DecisionError, match="needs a reason"):
        make_decision("a", "b", "cleared", "  ")
