"""The plugin of the tests (and the scheduler benchmark), in-process and in worker subprocesses
(``katopotato worker --plugin tests.scheduler.plugins_for_tests:plugin``); not shipped.

``testing.echo`` returns its value after an optional sleep with progress reports, failing its
first ``fail_tries`` tries on purpose (to watch retries); ``testing.noop`` does nothing.

Its jobs record what they do in broker streams, so a test sees each run and each effect.
"""

from __future__ import annotations

import asyncio
import os

from pydantic import BaseModel, Field, JsonValue

from katopotato.plugin import JobContext, NoParams, Plugin, Retry

SPEC = "tests.scheduler.plugins_for_tests:plugin"  # for --plugin of katopotato's commands
plugin = Plugin("testing", "0.1", description="jobs for the tests")


class EchoParams(BaseModel):
    value: JsonValue = None
    sleep_s: float = Field(0.0, ge=0, le=3600)
    steps: int = Field(0, ge=0, le=10_000)
    fail_tries: int = Field(0, ge=0)


@plugin.job("echo")
async def echo(ctx: JobContext, p: EchoParams) -> JsonValue:
    """Return ``value`` after ``sleep_s`` (reporting progress ``steps`` times)."""
    if ctx.job.tries <= p.fail_tries:
        raise RuntimeError(f"failing try {ctx.job.tries} of the first {p.fail_tries} on purpose")
    steps = max(1, p.steps)
    for i in range(steps):
        if p.sleep_s:
            await asyncio.sleep(p.sleep_s / steps)
        if p.steps:
            await ctx.progress(i + 1, p.steps, f"step {i + 1} of {p.steps}")
    return p.value


@plugin.job("noop")
async def noop(ctx: JobContext, p: NoParams) -> None:
    """Do nothing (scheduler throughput benchmarks)."""
    return None


class SlowParams(BaseModel):
    tag: str
    seconds: float = Field(1.0, ge=0)


@plugin.job("slow_effect", max_tries=3)
async def slow_effect(ctx: JobContext, p: SlowParams) -> dict[str, object]:
    """Mark the start (with this process's pid), sleep, then apply the effect once: a
    compare-and-set keyed by the job id that creates the record only if it does not exist."""
    await ctx.broker.append(f"started:{p.tag}", [{"pid": os.getpid(), "try": ctx.job.tries}])
    await asyncio.sleep(p.seconds)
    ids = await ctx.broker.kv_cas(
        f"effect:{ctx.job.id}", 0, {"pid": os.getpid()}, append_to=f"effects:{p.tag}", entries=[{"pid": os.getpid()}]
    )
    return {"pid": os.getpid(), "applied": ids is not None}


class FanParams(BaseModel):
    n: int = Field(ge=1, le=100)


@plugin.job("fan_out")
async def fan_out(ctx: JobContext, p: FanParams) -> list[object]:
    """Square 0..n-1 in child jobs."""
    return await ctx.map("square", [{"x": i} for i in range(p.n)])


class SquareParams(BaseModel):
    x: int


@plugin.job("square")
async def square(ctx: JobContext, p: SquareParams) -> int:
    return p.x * p.x


class RetryParams(BaseModel):
    times: int
    defer_s: float = 0.0


@plugin.job("retry_then_ok", max_tries=5)
async def retry_then_ok(ctx: JobContext, p: RetryParams) -> int:
    if ctx.job.tries <= p.times:
        raise Retry(defer_s=p.defer_s, reason=f"not yet (try {ctx.job.tries})")
    return ctx.job.tries


class GateParams(BaseModel):
    tag: str


@plugin.job("limited", concurrency=2)
async def limited(ctx: JobContext, p: GateParams) -> None:
    """Record entering and leaving, to observe the per-kind concurrency limit."""
    await ctx.broker.append(f"gate:{p.tag}", [{"in": ctx.job.id}])
    await asyncio.sleep(0.2)
    await ctx.broker.append(f"gate:{p.tag}", [{"out": ctx.job.id}])


@plugin.job("order")
async def order(ctx: JobContext, p: GateParams) -> None:
    await ctx.broker.append(f"order:{p.tag}", [{"id": ctx.job.id, "priority": ctx.job.priority}])
