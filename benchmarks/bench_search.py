"""Search benchmark (issue 4): query latency at 10 thousand and 1 million indexed segments, and
indexing throughput. Prints Markdown tables.

    .venv/bin/python benchmarks/bench_search.py [--sizes 10000,1000000] [--queries 40] [--backend sqlite]

Segments are sentences of the benchmark corpus (couchpotato/testing/corpus.txt) recombined at
random (a fixed seed), 500 per session. Two indexing figures:

- recorded: ``SessionStore.record`` per segment, exactly as a live session commits one (a durable
  transaction holding the event, the segment row and its index entry);
- bulk: the same insert + ``SearchBackend.index`` in transactions of 10 000, used to build the big
  corpora (what a re-index or an import would do).

Queries go through ``SearchBackend.search`` (aiosqlite/asyncpg included), newest first, 20 hits a
page, in these kinds: a rare term, a common term, a two-word phrase, a prefix, two terms that must
both match, one session's segments, the last hour, and the fifth page of a common term (cursor).
``--backend postgresql`` runs the same on a database made on 127.0.0.1:5432 and dropped after.
``--backend elasticsearch`` keeps the rows in SQLite and searches an index on the server at
``ELASTICSEARCH_URL`` (made for the run and dropped after), built by the backend's own indexer from
the database (its "bulk" figure is the indexer's); no server can be installed on the project's
machines, so without ``ELASTICSEARCH_URL`` it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from couchpotato.records import TranscriptEvent
from couchpotato.testing import corpus_paragraphs
from katopotato.db import Database, SegmentRow, SessionRow
from katopotato.events import EventLog
from katopotato.search import SearchBackend, SearchQuery, SegmentDoc, open_search, parse
from katopotato.search.elasticsearch import ElasticsearchSearch
from katopotato.sessions import SessionSpec, SessionStore

PER_SESSION = 500
BATCH = 10_000
PAGE = 20


def sentences() -> list[str]:
    text = " ".join(corpus_paragraphs())
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]


def make_texts(n: int, rng: random.Random, pool: list[str]) -> list[str]:
    out = []
    for _ in range(n):
        words = rng.choice(pool).split()
        start = rng.randrange(0, max(1, len(words) - 8))
        out.append(" ".join(words[start : start + rng.randint(8, 24)]))
    return out


@contextlib.asynccontextmanager
async def database(backend: str, folder: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
        await db.start()
        try:
            yield db
        finally:
            await db.close()
        return
    import asyncpg  # type: ignore[import-untyped]

    name = f"kp_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    try:
        await db.start()
        yield db
    finally:
        await db.close()
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def bulk_load(db: Database, search: SearchBackend, texts: list[str], t0: float) -> tuple[float, list[str]]:
    """Insert sessions and segments in batches; returns (segments per second, session ids)."""
    started = time.perf_counter()
    sessions: list[str] = []
    n = len(texts)
    for lo in range(0, n, BATCH):
        chunk = texts[lo : lo + BATCH]
        async with db.write() as conn:
            new_sessions = []
            for i in range(lo, lo + len(chunk)):
                if i % PER_SESSION == 0:
                    sid = secrets.token_hex(6)
                    sessions.append(sid)
                    new_sessions.append(
                        {
                            "id": sid,
                            "url": f"https://example.org/{sid}.mp3",
                            "title": f"bench {len(sessions)}",
                            "vocabulary": [],
                            "status": "completed",
                            "created_at": t0 + i,
                        }
                    )
            if new_sessions:
                await conn.execute(insert(SessionRow), new_sessions)
            first_id = int((await conn.execute(select(func.coalesce(func.max(SegmentRow.id), 0)))).scalar_one()) + 1
            rows: list[dict[str, Any]] = [
                {
                    "id": first_id + i - lo,  # the only writer: ids can be given, no RETURNING round trip
                    "session_id": sessions[i // PER_SESSION],
                    "seq": i % PER_SESSION,
                    "start_s": (i % PER_SESSION) * 5.0,
                    "end_s": (i % PER_SESSION) * 5.0 + 4.8,
                    "text": text,
                    "emitted_at": t0 + i,  # one segment per second of wall time, oldest first
                }
                for i, text in zip(range(lo, lo + len(chunk)), chunk, strict=True)
            ]
            await conn.execute(insert(SegmentRow), rows)
            docs = [
                SegmentDoc(
                    int(r["id"]),
                    str(r["session_id"]),
                    int(r["seq"]),
                    float(r["start_s"]),
                    float(r["end_s"]),
                    str(r["text"]),
                    float(r["emitted_at"]),
                )
                for r in rows
            ]
            await search.index(docs, conn)
    return n / (time.perf_counter() - started), sessions


async def recorded_rate(db: Database, search: SearchBackend, texts: list[str]) -> float:
    store = SessionStore(db, EventLog(db), search)
    spec = SessionSpec(url="https://example.org/recorded.mp3")
    await store.create(spec, source_kind="http", source_reason="bench")
    started = time.perf_counter()
    for seq, text in enumerate(texts):
        await store.record(spec.id, TranscriptEvent(spec.id, seq, seq * 5.0, seq * 5.0 + 4.8, text, (), time.time()))
    return len(texts) / (time.perf_counter() - started)


def query_kinds(rng: random.Random, pool: list[str], sessions: list[str], now: float) -> dict[str, Callable[[], Any]]:
    words = [w.lower() for s in pool for w in re.findall(r"[A-Za-z]{4,}", s)]
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts, key=lambda w: -counts[w])
    common, rare = ranked[:30], [w for w in ranked if counts[w] == 1] or ranked[-30:]
    phrases = []
    for s in pool:
        ws = re.findall(r"[A-Za-z]+", s)
        if len(ws) >= 3:
            phrases.append(ws)

    def phrase() -> SearchQuery:
        ws = rng.choice(phrases)
        i = rng.randrange(0, len(ws) - 1)
        return SearchQuery(parse(f'"{ws[i]} {ws[i + 1]}"'), limit=PAGE)

    return {
        "rare term": lambda: SearchQuery(parse(rng.choice(rare)), limit=PAGE),
        "common term": lambda: SearchQuery(parse(rng.choice(common)), limit=PAGE),
        "phrase": phrase,
        "prefix": lambda: SearchQuery(parse(rng.choice(ranked[:200])[:4] + "*"), limit=PAGE),
        "two terms": lambda: SearchQuery(parse(f"{rng.choice(ranked[:200])} {rng.choice(ranked[:200])}"), limit=PAGE),
        "one session": lambda: SearchQuery(parse(rng.choice(common)), session=rng.choice(sessions), limit=PAGE),
        "last hour": lambda: SearchQuery(parse(rng.choice(ranked[:200])), since=now - 3600, limit=PAGE),
        "page 5 (cursor)": lambda: SearchQuery(parse(rng.choice(common)), limit=PAGE),
    }


async def measure(search: SearchBackend, kinds: dict[str, Callable[[], Any]], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(3):  # warm the page cache
        await search.search(kinds["common term"]())
    for kind, make in kinds.items():
        for _ in range(n):
            q = make()
            if kind.startswith("page 5"):
                for _page in range(4):
                    page = await search.search(q)
                    if not page.next_cursor:
                        break
                    q = SearchQuery(q.parsed, limit=PAGE, cursor=page.next_cursor)
            t = time.perf_counter()
            await search.search(q)
            out[kind].append((time.perf_counter() - t) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,1000000", help="corpus sizes, comma-separated")
    ap.add_argument("--queries", type=int, default=40, help="queries per kind")
    ap.add_argument("--recorded", type=int, default=1000, help="segments recorded one by one")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "elasticsearch"), default="sqlite")
    args = ap.parse_args()
    es_url = os.environ.get("ELASTICSEARCH_URL", "").rstrip("/")
    if args.backend == "elasticsearch" and not es_url:
        print("bench_search: ELASTICSEARCH_URL is not set: no Elasticsearch figures (no server runs here)")
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = sentences()
    print(f"# Search benchmark ({args.backend}; {platform.processor() or platform.machine()}, {_cores()} cores)\n")
    index_rows, latency_rows = [], []
    for size in sizes:
        rng = random.Random(size)
        with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
            async with database("sqlite" if args.backend == "elasticsearch" else args.backend, Path(tmp)) as db:
                if args.backend == "elasticsearch":
                    index_url = f"{es_url}/kp-bench-{secrets.token_hex(4)}"
                    search: Any = ElasticsearchSearch(index_url, db, run_indexer=False)
                else:
                    search = open_search("sqlite://" if db.is_sqlite else "postgresql://", db)
                await search.start()
                texts = make_texts(size, rng, pool)
                now = time.time()
                bulk, sessions = await bulk_load(db, search, texts, now - size)
                if isinstance(search, ElasticsearchSearch):  # the rows are in; the indexer sends them
                    started = time.perf_counter()
                    await search.sync()
                    bulk = size / (time.perf_counter() - started)
                recorded = await recorded_rate(db, search, make_texts(args.recorded, rng, pool))
                size_mb = await asyncio.to_thread(_size_mb, Path(tmp)) if db.is_sqlite else 0
                index_rows.append((size, bulk, recorded, size_mb))
                kinds = query_kinds(rng, pool, sessions, now)
                results = await measure(search, kinds, args.queries)
                everything = [v for vs in results.values() for v in vs]
                for kind, values in results.items():
                    latency_rows.append((size, kind, pct(values, 50), pct(values, 95), max(values)))
                latency_rows.append((size, "**all kinds**", pct(everything, 50), pct(everything, 95), max(everything)))
                if isinstance(search, ElasticsearchSearch):
                    await drop_es(search)
                await search.close()
    print("## Indexing throughput\n")
    print("| segments in the index | bulk (segments/s) | recorded one by one, durable (segments/s) | database size |")
    print("|---:|---:|---:|---:|")
    for size, bulk, recorded, mb in index_rows:
        print(
            f"| {size:,} | {bulk:,.0f} | {recorded:,.0f} | {mb:,.0f} MB |"
            if mb
            else f"| {size:,} | {bulk:,.0f} | {recorded:,.0f} | – |"
        )
    print(f"\n## Query latency (ms, {args.queries} queries per kind, {PAGE} hits per page)\n")
    print("| segments | query | p50 | p95 | max |")
    print("|---:|---|---:|---:|---:|")
    for size, kind, p50, p95, worst in latency_rows:
        print(f"| {size:,} | {kind} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")


async def drop_es(search: ElasticsearchSearch) -> None:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(search.base, basic_auth=search._auth) as es:
        await es.options(ignore_status=404).indices.delete(index=f"{search.alias}-*")
        await es.options(ignore_status=404).indices.delete_index_template(name=search.template)


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("bench.db*")) / 1e6


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    asyncio.run(main())
