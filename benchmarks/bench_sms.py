"""Benchmark of the SMS plugin (issue 18). Prints a Markdown table.

    .venv/bin/python benchmarks/bench_sms.py [--texters 200] [--per-texter 10] [--callbacks 10000]

One process: a real ``katopotato`` service (SQLite, the embedded defaults) with the ``sms`` plugin,
the real ``twilio`` client inside it talking HTTP to a local stand-in of Twilio's Messages API
(tests/sms/standin.py), and the clients. What it measures:

- sends per second through the API: ``--texters`` texters, each its own token, clicking at once:
  ``GET campaigns/{id}/next`` then ``POST send``, until their batch is done (every send is one
  HTTP call to the stand-in);
- database statements per send: counted with SQLAlchemy's ``before_cursor_execute`` event around
  single ``POST send`` requests, in a campaign of 1 000 contacts and one of 10 000 (it must not grow);
- webhook throughput: ``--callbacks`` status callbacks signed like Twilio's (X-Twilio-Signature),
  50 in flight, for the messages sent above: interim, terminal, duplicate and out-of-order states.

The per-account rate limit is raised to 10 000/s for the run, so the figure is the service's, not
the limiter's (the default, 100/s, would cap it at 100).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from katopotato.api.app import create_app  # noqa: E402
from katopotato.api.service import Service  # noqa: E402
from katopotato.plugin_host import load_plugins  # noqa: E402
from katopotato.settings import Settings  # noqa: E402
from tests.sms.standin import Standin, run_standin, settings_for  # noqa: E402

ADMIN = "kp_bench_" + "b" * 43
PUBLIC_URL = "https://pencil.example.org"


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, *args: Any) -> None:
        self.n += 1


def sms_settings(standin: Standin) -> dict[str, Any]:
    return {**settings_for(standin), "public_url": PUBLIC_URL, "per_account_rate_per_s": 10_000}


@contextlib.asynccontextmanager
async def serve(tmp: Path, sms: dict[str, Any]) -> AsyncIterator[tuple[Service, str]]:
    settings = Settings(data_dir=tmp, api_token=ADMIN, public_url=PUBLIC_URL)
    registry = load_plugins(installed=False, extra=["plugins.sms:plugin"], settings={"sms": sms})
    async with Service.open(settings, registry=registry) as service:
        runner = web.AppRunner(create_app(service), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield service, f"http://127.0.0.1:{runner.addresses[0][1]}/v1/plugins/sms"
        finally:
            await runner.cleanup()


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str = ADMIN, **kw: Any) -> Any:
    async with http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as r:
        data = await r.json()
        if r.status >= 400:
            raise RuntimeError(f"{method} {url}: {r.status} {data}")
        return data


def contacts_csv(n: int, offset: int) -> list[str]:
    zips = ["94103", "10001", "60601", "80202", "85001", "96813", "99501", "02138"]

    def cell(k: int) -> str:  # exchanges 200-999: valid North American numbers
        return f"+1415{200 + (k // 10_000) % 800:03d}{k % 10_000:04d}"

    return [f"F{i},L{i},{cell(offset + i)},{zips[i % len(zips)]}" for i in range(n)]


async def make_campaign(http: aiohttp.ClientSession, base: str, n: int, offset: int) -> int:
    c = await call(http, "POST", f"{base}/campaigns",
                   json={"title": "bench", "script": "Hi {firstName}, it's {texterName}!", "start_hour": 0,
                         "end_hour": 24, "active": True})  # fmt: skip
    rows = contacts_csv(n, offset)
    for i in range(0, n, 1000):
        body = "first_name,last_name,cell,zip\n" + "\n".join(rows[i : i + 1000]) + "\n"
        report = await call(http, "POST", f"{base}/campaigns/{c['id']}/contacts", data=body.encode())
        assert not report["invalid"] and not report["duplicates"], report
    return int(c["id"])


def _child(tmp: str, sms: dict[str, Any], out: Any) -> None:
    """The service alone in its own process (the ``--separate`` run)."""

    async def main() -> None:
        async with serve(Path(tmp), sms) as (_service, base):
            out.put(base)
            await asyncio.Event().wait()

    asyncio.run(main())


async def new_token(http: aiohttp.ClientSession, base: str, name: str) -> tuple[str, str]:
    root = base.split("/v1/")[0]
    t = await call(http, "POST", f"{root}/v1/tokens", json={"scopes": ["jobs:read", "jobs:write"], "name": name})
    return str(t["token"]), str(t["id"])


async def sends_per_second(http: aiohttp.ClientSession, base: str, texters: int, per: int) -> dict[str, Any]:
    cid = await make_campaign(http, base, texters * per, 0)
    tokens = []
    for t in range(texters):
        secret, tid = await new_token(http, base, f"texter{t}")
        await call(http, "POST", f"{base}/campaigns/{cid}/texters", json={"texter_id": tid, "name": f"T{t}"})
        await call(http, "POST", f"{base}/campaigns/{cid}/assignments", json={"texter_id": tid, "count": per})
        tokens.append(secret)
    latencies: list[float] = []
    sids: list[str] = []

    async def texter(token: str) -> None:
        while True:
            nxt = await call(http, "GET", f"{base}/campaigns/{cid}/next", token)
            if nxt["contact"] is None:
                return
            t0 = time.perf_counter()
            sent = await call(http, "POST", f"{base}/send", token, json={"contact_id": nxt["contact"]["id"]})
            latencies.append(time.perf_counter() - t0)
            sids.append(sent["sid"])

    t0 = time.perf_counter()
    await asyncio.gather(*(texter(tok) for tok in tokens))
    wall = time.perf_counter() - t0
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    return {"sends": len(sids), "wall_s": wall, "per_s": len(sids) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * p95, "sids": sids}  # fmt: skip


async def queries_per_send(service: Service, http: aiohttp.ClientSession, base: str, size: int, offset: int) -> float:
    cid = await make_campaign(http, base, size, offset)
    secret, info = await service.tokens.create(["jobs:read", "jobs:write"], name=f"q{size}")
    await call(http, "POST", f"{base}/campaigns/{cid}/texters", json={"texter_id": info.id, "name": "Q"})
    await call(
        http,
        "POST",
        f"{base}/campaigns/{cid}/assignments",
        json={"texter_id": info.id, "count": 20},
    )
    counter = Counter()
    engine = service.db.engine.sync_engine
    counts = []
    for _ in range(20):
        nxt = await call(http, "GET", f"{base}/campaigns/{cid}/next", secret)
        event.listen(engine, "before_cursor_execute", counter)
        before = counter.n
        await call(http, "POST", f"{base}/send", secret, json={"contact_id": nxt["contact"]["id"]})
        counts.append(counter.n - before)
        event.remove(engine, "before_cursor_execute", counter)
    return statistics.mean(counts)


async def throughput(
    http: aiohttp.ClientSession, base: str, standin: Standin, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    print("  sends…", file=sys.stderr, flush=True)
    s = await sends_per_second(http, base, args.texters, args.per_texter)
    assert len(standin.received) == s["sends"]
    print("  webhooks…", file=sys.stderr, flush=True)
    return s, await webhook_throughput(http, base, standin, s["sids"], args.callbacks)


async def webhook_throughput(
    http: aiohttp.ClientSession, base: str, standin: Standin, sids: list[str], n: int
) -> dict[str, Any]:
    states = ["queued", "sending", "sent", "delivered", "sent", "delivered", "undelivered"]  # dup + out of order
    rng = random.Random(18)
    jobs = []
    url = f"{PUBLIC_URL}/v1/plugins/sms/twilio/status"
    for i in range(n):
        sid = sids[i % len(sids)]
        status = states[(i // len(sids)) % len(states)] if n > len(sids) else rng.choice(states)
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": standin.account_sid, "To": "+14155550000"}
        jobs.append((params, standin.sign(url, params)))
    sem = asyncio.Semaphore(50)
    codes: list[int] = []

    async def post(params: dict[str, str], sig: str) -> None:
        async with sem, http.post(f"{base}/twilio/status", data=params, headers={"X-Twilio-Signature": sig}) as r:
            await r.read()
            codes.append(r.status)

    t0 = time.perf_counter()
    await asyncio.gather(*(post(p, s) for p, s in jobs))
    wall = time.perf_counter() - t0
    assert set(codes) == {200}, set(codes)
    return {"callbacks": n, "wall_s": wall, "per_s": n / wall}


async def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            run_standin() as standin,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            if args.separate:  # the service alone in a process of its own; clients and stand-in here
                ctx = multiprocessing.get_context("spawn")
                out = ctx.Queue()
                child = ctx.Process(target=_child, args=(str(Path(tmp) / "a"), sms_settings(standin), out), daemon=True)
                child.start()
                try:
                    base = await asyncio.get_running_loop().run_in_executor(None, out.get, True, 120)
                    s, w = await throughput(http, base, standin, args)
                finally:
                    child.terminate()
                    child.join(10)
            else:
                async with serve(Path(tmp) / "a", sms_settings(standin)) as (_service, base):
                    s, w = await throughput(http, base, standin, args)
            print("  queries per send…", file=sys.stderr, flush=True)
            async with serve(Path(tmp) / "b", sms_settings(standin)) as (service, base):
                q_small = await queries_per_send(service, http, base, 1_000, 1_000_000)
                q_large = await queries_per_send(service, http, base, 10_000, 2_000_000)
    rows = [
        ("sends/s through the API", f"{s['per_s']:.0f}",
         f"{args.texters} texters clicking at once, {s['sends']} sends in {s['wall_s']:.1f} s; "
         f"POST send p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms"),
        ("DB statements per send", f"{q_small:.1f} / {q_large:.1f}", "campaign of 1 000 / 10 000 contacts"),
        ("status callbacks/s", f"{w['per_s']:.0f}",
         f"{w['callbacks']} signed callbacks, 50 in flight, {w['wall_s']:.1f} s"),
    ]  # fmt: skip
    where = "service in its own process" if args.separate else "service, stand-in and clients in one process"
    head = f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; SQLite; {where}"
    table = ["| measure | value | how |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    return head + "\n\n" + "\n".join(table) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texters", type=int, default=200)
    ap.add_argument("--per-texter", type=int, default=10)
    ap.add_argument("--callbacks", type=int, default=10_000)
    ap.add_argument("--separate", action="store_true", help="run the service in a process of its own")
    args = ap.parse_args()
    print(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
