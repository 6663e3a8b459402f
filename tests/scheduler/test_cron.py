"""Cron: two schedulers on one broker fire each tick once."""

from __future__ import annotations

import asyncio
import time

import pytest

from katopotato.broker import Broker, MemoryBroker
from katopotato.broker.redis import RedisBroker
from katopotato.cron import CronScheduler, latest_tick
from katopotato.plugin_host import PluginRegistry, ScheduledJob, builtin_plugins
from katopotato.scheduler import Scheduler

from .plugins_for_tests import plugin as testing_plugin

pytestmark = pytest.mark.timeout(30)

EVERY_SECOND = ScheduledJob("core.ping", "* * * * * *", "testing.echo", {"value": "tick"})
NIGHTLY = ScheduledJob("core.nightly", "17 3 * * *", "testing.noop", {})


def test_latest_tick() -> None:
    now = 1_700_000_000.4
    assert latest_tick("* * * * * *", now) == 1_700_000_000.0
    assert latest_tick("* * * * *", now) == 1_700_000_000.0 - (1_700_000_000 % 60)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_two_schedulers_fire_each_tick_once(backend: str, request: pytest.FixtureRequest) -> None:
    registry = PluginRegistry([*builtin_plugins(), testing_plugin])
    first: Broker
    second: Broker
    if backend == "memory":
        first = second = MemoryBroker()
    else:
        url = request.getfixturevalue("redis_url")
        first, second = RedisBroker(url), RedisBroker(url)  # two processes' worth of connections
    async with first, second:
        a = CronScheduler(Scheduler(first, registry), [EVERY_SECOND, NIGHTLY])
        b = CronScheduler(Scheduler(second, registry), [EVERY_SECOND, NIGHTLY])
        base = float(int(time.time()))
        ticks = [base - 3, base - 2, base - 1, base]
        for t in ticks:
            fired_a, fired_b = await asyncio.gather(a.tick(t + 0.25), b.tick(t + 0.5))
            every = [f for f in fired_a + fired_b if f.schedule == "core.ping"]
            assert len(every) == 2 and every[0].job.id == every[1].job.id
            assert sum(f.created for f in every) == 1
            assert every[0].tick == t
            # a scheduler asked again within the same tick does not even try
            assert [f for f in await a.tick(t + 0.75) if f.schedule == "core.ping"] == []
        jobs = await Scheduler(first, registry).list(kind="testing.echo", limit=100)
        assert sorted(j.idempotency_key or "" for j in jobs) == [f"cron:core.ping:{t:.0f}" for t in ticks]
        assert await Scheduler(first, registry).list(kind="testing.noop") == []  # 03:17 is not now (misfire grace)

        # and the same with both schedulers' own loops running for a little over two ticks
        before = {j.id for j in jobs}
        async with a, b:
            await asyncio.sleep(2.3)
        new = [j for j in await Scheduler(first, registry).list(kind="testing.echo", limit=100) if j.id not in before]
        keys = [j.idempotency_key for j in new]
        assert 2 <= len(new) <= 4 and len(set(keys)) == len(keys)
