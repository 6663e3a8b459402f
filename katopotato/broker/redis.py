"""``redis://host:port/db?prefix=kp:``: the broker on Redis, for any number of machines.

Why sorted sets and Lua rather than Streams consumer groups for the job queues
(docs/scheduler.md has the long form): a consumer group gives at-least-once delivery and
``XAUTOCLAIM``, but not priorities across streams, per-kind concurrency limits shared by all
workers, delayed retries, or removing a queued message on cancel, and each of those would need a
sorted set and a script beside the stream anyway. So the queues use the structure arq, BullMQ and
Sidekiq's reliable fetch use: a sorted set of ready jobs per kind (score = priority, then enqueue
order), a sorted set of leases by deadline (the visibility timeout), a sorted set of delayed
retries, a hash per job, and one Lua script per transition so that every step is atomic on the
server. Clocks are Redis's (``TIME``), so workers on machines with skewed clocks agree on leases.
Streams are used where they fit: per-job events, the transcript event streams (ids double as SSE
``Last-Event-ID``), and a wake-up stream that idle workers block on instead of polling.

Keys (``P`` = prefix): ``P job:<id>`` hash; ``P jobs`` index zset; ``P ready:<kind>`` zset;
``P delayed``, ``P running``, ``P dead`` zsets; ``P active`` hash (running per kind);
``P idem:<key>``, ``P result:<id>`` strings; ``P kv:<key>`` hash; ``P stream:<name>`` streams;
``P wake`` stream; ``P seq`` counter. Scripts build key names from the prefix, so Redis Cluster is
not supported (one Redis, or Sentinel/replicas, is).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..constants import (
    IDEMPOTENCY_TTL_S,
    JOB_EVENTS_MAXLEN,
    JOB_TTL_S,
    RECLAIM_BATCH,
    REDIS_DEFAULT_PREFIX,
    REDIS_SCORE_PRIORITY_SHIFT,
    RESULT_TTL_S,
    VISIBILITY_TIMEOUT_S,
)
from ..errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    JobNotFound,
    JobStateError,
    SerializationError,
)
from ..jobs import Job, job_from_fields, job_to_fields
from .base import BrokerStats, Lease, LeaseState, StreamEntry, Versioned

_HELPERS = f"""
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function secs(ms) return string.format('%.3f', ms / 1000) end
local function jkey(id) return P .. 'job:' .. id end
local function event(id, typ, status, now, err, tries, progress)
  local e = {{type = typ, status = status, at = now / 1000, tries = tonumber(tries) or 0}}
  if err and err ~= '' then e.error = err end
  if progress then e.progress = progress end
  redis.call('XADD', P .. 'stream:job:' .. id, 'MAXLEN', '~', {JOB_EVENTS_MAXLEN}, '*', 'd', cjson.encode(e))
end
local function wake() redis.call('XADD', P .. 'wake', 'MAXLEN', '~', 100, '*', 'n', '1') end
local function finish_ttl(id, ttl)
  redis.call('PEXPIRE', jkey(id), ttl)
  redis.call('PEXPIRE', P .. 'stream:job:' .. id, ttl)
end
local function end_lease(id, kind)
  redis.call('ZREM', P .. 'running', id)
  redis.call('HINCRBY', P .. 'active', kind, -1)
  redis.call('HDEL', jkey(id), 'lease')
end
"""

_ENQUEUE = (
    _HELPERS
    + f"""
local id, idem, idem_ttl, defer = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local kind, prio = ARGV[6], tonumber(ARGV[7])
local now = now_ms()
if idem ~= '' then
  local existing = redis.call('GET', P .. 'idem:' .. idem)
  if existing and redis.call('EXISTS', jkey(existing)) == 1 then return {{0, existing}} end
end
local score = prio * {REDIS_SCORE_PRIORITY_SHIFT} + redis.call('INCR', P .. 'seq')
local f = {{}}
for i = 8, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('HSET', jkey(id), unpack(f))
redis.call('HSET', jkey(id), 'score', score, 'created_at', secs(now), 'status', 'queued', 'tries', 0)
redis.call('ZADD', P .. 'jobs', now, id)
local ready_at = ''
if defer > 0 then
  ready_at = secs(now + defer)
  redis.call('HSET', jkey(id), 'ready_at', ready_at)
  redis.call('ZADD', P .. 'delayed', now + defer, id)
else
  redis.call('ZADD', P .. 'ready:' .. kind, score, id)
  wake()
end
if idem ~= '' then redis.call('SET', P .. 'idem:' .. idem, id, 'PX', idem_ttl) end
event(id, 'status', 'queued', now, nil, 0)
return {{1, id, secs(now), ready_at}}
"""
)

_CLAIM = (
    _HELPERS
    + f"""
local consumer, n, vis, token = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local nk = tonumber(ARGV[6])
local kinds, limits = {{}}, {{}}
for i = 1, nk do kinds[i] = ARGV[6 + i]; limits[i] = tonumber(ARGV[6 + nk + i]) end
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', P .. 'running', '-inf', now, 'LIMIT', 0, {RECLAIM_BATCH})
for _, id in ipairs(expired) do
  local k = jkey(id)
  local kind, tries, maxt, cancel, score = unpack(redis.call('HMGET', k, 'kind', 'tries', 'max_tries',
    'cancel_requested', 'score'))
  if kind then
    end_lease(id, kind)
    local err = 'worker lost: lease expired on try ' .. tries
    local st
    if cancel == '1' then
      st = 'cancelled'
      redis.call('HSET', k, 'status', st, 'finished_at', secs(now))
      finish_ttl(id, tonumber(ARGV[#ARGV]))
    elseif tonumber(tries) >= tonumber(maxt) then
      st = 'failed'
      redis.call('HSET', k, 'status', st, 'error', err, 'finished_at', secs(now))
      redis.call('ZADD', P .. 'dead', now, id)
    else
      st = 'queued'
      redis.call('HSET', k, 'status', st, 'error', err)
      redis.call('ZADD', P .. 'ready:' .. kind, score, id)
    end
    event(id, 'status', st, now, err, tries)
  else
    redis.call('ZREM', P .. 'running', id)
  end
end
local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, {RECLAIM_BATCH})
for _, id in ipairs(due) do
  redis.call('ZREM', P .. 'delayed', id)
  local kind, score, status = unpack(redis.call('HMGET', jkey(id), 'kind', 'score', 'status'))
  if kind and status == 'queued' then redis.call('ZADD', P .. 'ready:' .. kind, score, id) end
end
local out = {{}}
local active = {{}}
for i = 1, nk do active[i] = tonumber(redis.call('HGET', P .. 'active', kinds[i]) or '0') end
for j = 1, n do
  local best, bestscore, bi = nil, nil, nil
  for i = 1, nk do
    if limits[i] <= 0 or active[i] < limits[i] then
      local top = redis.call('ZRANGE', P .. 'ready:' .. kinds[i], 0, 0, 'WITHSCORES')
      if top[1] and (bestscore == nil or tonumber(top[2]) < bestscore) then
        best, bestscore, bi = top[1], tonumber(top[2]), i
      end
    end
  end
  if not best then break end
  redis.call('ZREM', P .. 'ready:' .. kinds[bi], best)
  local k = jkey(best)
  if redis.call('EXISTS', k) == 1 then
    active[bi] = active[bi] + 1
    redis.call('HINCRBY', P .. 'active', kinds[bi], 1)
    local tok = token .. '-' .. j
    local tries = redis.call('HINCRBY', k, 'tries', 1)
    redis.call('HSET', k, 'status', 'running', 'started_at', secs(now), 'worker', consumer, 'lease', tok)
    redis.call('ZADD', P .. 'running', now + vis, best)
    event(best, 'status', 'running', now, nil, tries)
    out[#out + 1] = tok
    out[#out + 1] = redis.call('HGETALL', k)
  end
end
if #out > 0 then return {{1, out}} end
local last = redis.call('XREVRANGE', P .. 'wake', '+', '-', 'COUNT', 1)
local wid = '0-0'
if last[1] then wid = last[1][1] end
local nxt = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
local lease = redis.call('ZRANGE', P .. 'running', 0, 0, 'WITHSCORES')
return {{0, wid, nxt[2] or '', lease[2] or '', tostring(now)}}
"""
)

_HEARTBEAT = (
    _HELPERS
    + """
local vis = tonumber(ARGV[2])
local now = now_ms()
local res = {}
for i = 3, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  local k = jkey(id)
  if redis.call('HGET', k, 'lease') ~= tok then
    res[#res + 1] = 'lost'
  else
    redis.call('ZADD', P .. 'running', 'XX', now + vis, id)
    local state = 'ok'
    if redis.call('HGET', k, 'cancel_requested') == '1' then state = 'cancel' end
    res[#res + 1] = state
  end
end
return res
"""
)

_PROGRESS = (
    _HELPERS
    + """
local id, tok, pj = ARGV[2], ARGV[3], ARGV[4]
local k = jkey(id)
if redis.call('HGET', k, 'lease') ~= tok then return 'lost' end
local now = now_ms()
redis.call('HSET', k, 'progress', pj)
event(id, 'progress', 'running', now, nil, redis.call('HGET', k, 'tries'), cjson.decode(pj))
if redis.call('HGET', k, 'cancel_requested') == '1' then return 'cancel' end
return 'ok'
"""
)

_FINISH = (
    _HELPERS
    + """
local id, tok, outcome, result = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local result_ttl, job_ttl, err, retry = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local k = jkey(id)
if redis.call('HGET', k, 'lease') ~= tok then return false end
local kind, score, tries, maxt = unpack(redis.call('HMGET', k, 'kind', 'score', 'tries', 'max_tries'))
local now = now_ms()
end_lease(id, kind)
local st
if outcome == 'succeeded' then
  st = 'succeeded'
  redis.call('SET', P .. 'result:' .. id, result, 'PX', result_ttl)
  redis.call('HSET', k, 'status', st, 'finished_at', secs(now), 'result_ref', 'results/' .. id, 'error', '')
  finish_ttl(id, job_ttl)
elseif outcome == 'cancelled' then
  st = 'cancelled'
  redis.call('HSET', k, 'status', st, 'finished_at', secs(now))
  finish_ttl(id, job_ttl)
elseif outcome == 'release' then
  st = 'queued'
  tries = redis.call('HINCRBY', k, 'tries', -1)
  redis.call('HSET', k, 'status', st)
  redis.call('ZADD', P .. 'ready:' .. kind, score, id)
else
  if retry >= 0 and tonumber(tries) < tonumber(maxt) then
    st = 'queued'
    redis.call('HSET', k, 'status', st, 'error', err)
    if retry > 0 then
      redis.call('HSET', k, 'ready_at', secs(now + retry))
      redis.call('ZADD', P .. 'delayed', now + retry, id)
    else
      redis.call('ZADD', P .. 'ready:' .. kind, score, id)
    end
  else
    st = 'failed'
    redis.call('HSET', k, 'status', st, 'error', err, 'finished_at', secs(now))
    redis.call('ZADD', P .. 'dead', now, id)
  end
end
event(id, 'status', st, now, err, tries)
wake()
return st
"""
)

_CANCEL = (
    _HELPERS
    + """
local id, job_ttl = ARGV[2], tonumber(ARGV[3])
local k = jkey(id)
local st, kind, tries, cancel = unpack(redis.call('HMGET', k, 'status', 'kind', 'tries', 'cancel_requested'))
if not st then return 'missing' end
local now = now_ms()
if st == 'queued' then
  redis.call('ZREM', P .. 'ready:' .. kind, id)
  redis.call('ZREM', P .. 'delayed', id)
  redis.call('HSET', k, 'status', 'cancelled', 'finished_at', secs(now))
  event(id, 'status', 'cancelled', now, nil, tries)
  finish_ttl(id, job_ttl)
  return 'cancelled'
elseif st == 'running' and cancel ~= '1' then
  redis.call('HSET', k, 'cancel_requested', '1')
  event(id, 'cancel_requested', 'running', now, nil, tries)
end
return st
"""
)

_REQUEUE = (
    _HELPERS
    + f"""
local id = ARGV[2]
local k = jkey(id)
local st, kind, prio = unpack(redis.call('HMGET', k, 'status', 'kind', 'priority'))
if not st then return 'missing' end
if st ~= 'failed' and st ~= 'cancelled' then return st end
local now = now_ms()
local score = tonumber(prio) * {REDIS_SCORE_PRIORITY_SHIFT} + redis.call('INCR', P .. 'seq')
redis.call('ZREM', P .. 'dead', id)
redis.call('PERSIST', k)
redis.call('PERSIST', P .. 'stream:job:' .. id)
redis.call('HSET', k, 'status', 'queued', 'tries', 0, 'error', '', 'finished_at', '', 'started_at', '',
  'cancel_requested', '0', 'ready_at', '', 'score', score)
redis.call('ZADD', P .. 'ready:' .. kind, score, id)
event(id, 'status', 'queued', now, nil, 0)
wake()
return 'requeued'
"""
)

_KV_CAS = (
    _HELPERS
    + """
local key, expected, value, ttl, stream = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]
local k = P .. 'kv:' .. key
local cur = tonumber(redis.call('HGET', k, 'n') or '0')
if cur ~= expected then return {0} end
redis.call('HSET', k, 'v', value, 'n', cur + 1)
if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('PERSIST', k) end
local out = {1}
if stream ~= '' then
  for i = 7, #ARGV do out[#out + 1] = redis.call('XADD', P .. 'stream:' .. stream, '*', 'd', ARGV[i]) end
end
return out
"""
)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SerializationError(f"not JSON-serialisable: {e}") from e


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def split_url(url: str) -> tuple[str, str]:
    """``redis://…?prefix=p:`` → (URL for redis-py without ``prefix``, prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis URL: {url!r} (expected redis://host:port/db)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), REDIS_DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisBroker:
    """A broker on one Redis server. ``async with RedisBroker("redis://127.0.0.1:6379/0")``."""

    def __init__(self, url: str, *, job_ttl_s: float = JOB_TTL_S) -> None:
        self.url = url
        self.job_ttl_s = job_ttl_s
        redis_url, self.prefix = split_url(url)
        self._where = urlsplit(redis_url).netloc.rpartition("@")[2] or redis_url
        self.redis: aioredis.Redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        r = self.redis
        self._enqueue = r.register_script(_ENQUEUE)
        self._claim = r.register_script(_CLAIM)
        self._heartbeat = r.register_script(_HEARTBEAT)
        self._progress = r.register_script(_PROGRESS)
        self._finish = r.register_script(_FINISH)
        self._cancel = r.register_script(_CANCEL)
        self._requeue = r.register_script(_REQUEUE)
        self._kv_cas = r.register_script(_KV_CAS)
        self._wake_from: dict[str, tuple[str, float | None]] = {}

    async def __aenter__(self) -> Self:
        with self._errors():
            await self.redis.ping()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.redis.aclose()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as e:
            raise BrokerUnavailable(f"cannot reach Redis at {self._where}: {e}") from e
        except RedisError as e:
            raise BrokerError(f"Redis at {self._where} failed: {e}") from e

    def _k(self, name: str) -> str:
        return self.prefix + name

    # --- jobs ---------------------------------------------------------------------------------

    async def enqueue(
        self, job: Job, *, defer_s: float = 0.0, idempotency_ttl_s: float = IDEMPOTENCY_TTL_S
    ) -> tuple[Job, bool]:
        fields = job_to_fields(job)
        for k in ("status", "tries", "created_at", "ready_at", "started_at", "finished_at", "worker"):
            fields.pop(k, None)
        args: list[Any] = [
            self.prefix,
            job.id,
            job.idempotency_key or "",
            _ms(idempotency_ttl_s),
            _ms(defer_s) if defer_s > 0 else 0,
            job.kind,
            job.priority,
        ]
        for k, v in fields.items():
            args += [k, v]
        with self._errors():
            res = await self._enqueue(args=args)
        if int(res[0]) == 0:
            existing = await self.get_job(str(res[1]))
            if existing is None:
                raise BrokerError(f"idempotency key {job.idempotency_key!r} names a vanished job")
            return existing, False
        ready_at = float(res[3]) if res[3] else None
        return job.evolve(created_at=float(res[2]), ready_at=ready_at, tries=0), True

    async def get_job(self, job_id: str) -> Job | None:
        with self._errors():
            fields = await cast("Awaitable[dict[str, str]]", self.redis.hgetall(self._k(f"job:{job_id}")))
        return job_from_fields(fields) if fields else None

    async def _jobs(self, ids: Sequence[str]) -> list[Job | None]:
        if not ids:
            return []
        with self._errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hgetall(self._k(f"job:{i}"))
                rows = await pipe.execute()
        return [job_from_fields(r) if r else None for r in rows]

    async def find_job(self, idempotency_key: str) -> Job | None:
        with self._errors():
            job_id = await self.redis.get(self._k(f"idem:{idempotency_key}"))
        return await self.get_job(str(job_id)) if job_id else None

    async def list_jobs(
        self, *, kind: str | None = None, status: str | None = None, limit: int = 100, before: str | None = None
    ) -> list[Job]:
        out: list[Job] = []
        start = 0
        if before is not None:
            with self._errors():
                rank = await self.redis.zrevrank(self._k("jobs"), before)
            if rank is None:
                raise JobNotFound(f"no job {before}")
            start = int(rank) + 1
        page = max(limit, 100)
        while len(out) < limit:
            with self._errors():
                ids = await self.redis.zrevrange(self._k("jobs"), start, start + page - 1)
            if not ids:
                break
            start += page
            gone = []
            for job_id, job in zip(ids, await self._jobs(ids), strict=True):
                if job is None:
                    gone.append(job_id)
                elif (not kind or job.kind == kind) and (not status or job.status == status):
                    out.append(job)
            if gone:
                with self._errors():
                    await self.redis.zrem(self._k("jobs"), *gone)
                start -= len(gone)
        return out[:limit]

    async def claim(
        self,
        consumer: str,
        kinds: Sequence[str],
        *,
        max_jobs: int = 1,
        limits: Mapping[str, int] | None = None,
        visibility_s: float = VISIBILITY_TIMEOUT_S,
    ) -> list[Lease]:
        limits = limits or {}
        args: list[Any] = [self.prefix, consumer, max_jobs, _ms(visibility_s), uuid.uuid4().hex, len(kinds)]
        args += list(kinds)
        args += [int(limits.get(k, 0)) for k in kinds]
        args.append(_ms(self.job_ttl_s))
        with self._errors():
            res = await self._claim(args=args)
        if int(res[0]) == 1:
            flat = res[1]
            leases = []
            for i in range(0, len(flat), 2):
                row = flat[i + 1]
                fields = dict(zip(row[::2], row[1::2], strict=True))
                leases.append(Lease(job_from_fields(fields), str(flat[i])))
            return leases
        now_ms = float(res[4])
        due = [float(x) for x in (res[2], res[3]) if x]
        self._wake_from[consumer] = (str(res[1]), (min(due) - now_ms) / 1000 if due else None)
        return []

    async def wait_for_work(self, consumer: str, timeout_s: float) -> None:
        wake_id, due_in_s = self._wake_from.pop(consumer, ("$", None))
        if due_in_s is not None:
            timeout_s = min(timeout_s, max(0.0, due_in_s))
        if timeout_s <= 0:
            return
        with self._errors():
            await self.redis.xread({self._k("wake"): wake_id}, count=1, block=_ms(timeout_s))

    async def heartbeat(
        self, leases: Sequence[Lease], *, visibility_s: float = VISIBILITY_TIMEOUT_S
    ) -> dict[str, LeaseState]:
        if not leases:
            return {}
        args: list[Any] = [self.prefix, _ms(visibility_s)]
        for lease in leases:
            args += [lease.job.id, lease.token]
        with self._errors():
            res = await self._heartbeat(args=args)
        return {lease.job.id: LeaseState(s) for lease, s in zip(leases, res, strict=True)}

    async def progress(self, lease: Lease, done: float, total: float | None, message: str) -> LeaseState:
        pj = _dumps({"done": done, "total": total, "message": message})
        with self._errors():
            res = await self._progress(args=[self.prefix, lease.job.id, lease.token, pj])
        return LeaseState(res)

    async def _end(
        self,
        lease: Lease,
        outcome: str,
        *,
        result: str = "",
        ttl_s: float = 0.0,
        error: str = "",
        retry_in_s: float | None = None,
    ) -> str | None:
        retry = -1 if retry_in_s is None else (_ms(retry_in_s) if retry_in_s > 0 else 0)
        args = [
            self.prefix,
            lease.job.id,
            lease.token,
            outcome,
            result,
            _ms(ttl_s) if ttl_s else 1,
            _ms(self.job_ttl_s),
            error,
            retry,
        ]
        with self._errors():
            res = await self._finish(args=args)
        return str(res) if res else None

    async def succeed(self, lease: Lease, result: Any, *, result_ttl_s: float = RESULT_TTL_S) -> bool:
        return await self._end(lease, "succeeded", result=_dumps(result), ttl_s=result_ttl_s) is not None

    async def fail(self, lease: Lease, error: str, *, retry_in_s: float | None) -> str | None:
        return await self._end(lease, "failed", error=error, retry_in_s=retry_in_s)

    async def release(self, lease: Lease) -> bool:
        return await self._end(lease, "release") is not None

    async def finish_cancelled(self, lease: Lease) -> bool:
        return await self._end(lease, "cancelled") is not None

    async def cancel(self, job_id: str) -> Job:
        with self._errors():
            res = await self._cancel(args=[self.prefix, job_id, _ms(self.job_ttl_s)])
        job = await self.get_job(job_id) if res != "missing" else None
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    async def requeue(self, job_id: str) -> Job:
        with self._errors():
            res = await self._requeue(args=[self.prefix, job_id])
        job = await self.get_job(job_id) if res != "missing" else None
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        if res != "requeued":
            raise JobStateError(f"job {job_id} is {res}; only failed or cancelled jobs can be requeued")
        return job

    async def dead_letters(self, *, limit: int = 100) -> list[Job]:
        with self._errors():
            ids = await self.redis.zrevrange(self._k("dead"), 0, limit - 1)
        return [j for j in await self._jobs(ids) if j is not None]

    async def result(self, job_id: str) -> tuple[bool, Any]:
        with self._errors():
            raw = await self.redis.get(self._k(f"result:{job_id}"))
        return (False, None) if raw is None else (True, json.loads(raw))

    async def stats(self, kinds: Sequence[str]) -> BrokerStats:
        with self._errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for k in kinds:
                    pipe.zcard(self._k(f"ready:{k}"))
                pipe.zcard(self._k("delayed"))
                pipe.zcard(self._k("running"))
                pipe.zcard(self._k("dead"))
                res = await pipe.execute()
        n = len(kinds)
        return BrokerStats(dict(zip(kinds, map(int, res[:n]), strict=True)), *map(int, res[n:]))

    # --- keyed state --------------------------------------------------------------------------

    async def kv_get(self, key: str) -> Versioned | None:
        with self._errors():
            raw = await cast("Awaitable[list[str | None]]", self.redis.hmget(self._k(f"kv:{key}"), ["v", "n"]))
        if raw[0] is None:
            return None
        return Versioned(json.loads(raw[0]), int(raw[1] or 0))

    async def kv_cas(
        self,
        key: str,
        version: int,
        value: Mapping[str, Any],
        *,
        append_to: str | None = None,
        entries: Sequence[Mapping[str, Any]] = (),
        ttl_s: float | None = None,
    ) -> list[str] | None:
        ttl_ms = _ms(ttl_s) if ttl_s else 0
        args: list[Any] = [self.prefix, key, version, _dumps(dict(value)), ttl_ms, append_to or ""]
        args += [_dumps(dict(e)) for e in entries] if append_to else []
        with self._errors():
            res = await self._kv_cas(args=args)
        if int(res[0]) == 0:
            return None
        return [str(i) for i in res[1:]]

    async def kv_delete(self, key: str) -> None:
        with self._errors():
            await self.redis.delete(self._k(f"kv:{key}"))

    # --- streams ------------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        entries: Sequence[Mapping[str, Any]],
        *,
        maxlen: int | None = None,
        ttl_s: float | None = None,
    ) -> list[str]:
        if not entries:
            return []
        key = self._k(f"stream:{stream}")
        encoded = [_dumps(dict(e)) for e in entries]
        with self._errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                for data in encoded:
                    pipe.xadd(key, {"d": data}, maxlen=maxlen, approximate=False)
                if ttl_s is not None:
                    pipe.pexpire(key, _ms(ttl_s))
                results = await pipe.execute()
                return [str(i) for i in results[: len(encoded)]]

    async def read(
        self, stream: str, after: str = "0", *, count: int = 100, block_s: float | None = None
    ) -> list[StreamEntry]:
        key = self._k(f"stream:{stream}")
        block = _ms(block_s) if block_s else None
        with self._errors():
            res = await self.redis.xread({key: after or "0"}, count=count, block=block)
        out: list[StreamEntry] = []
        for _name, entries in res or []:
            for entry_id, fields in entries:
                out.append(StreamEntry(str(entry_id), json.loads(fields["d"])))
        return out

    async def delete_stream(self, stream: str) -> None:
        with self._errors():
            await self.redis.delete(self._k(f"stream:{stream}"))

    async def delete_all(self) -> int:
        """Delete every key under this broker's prefix (tests, and resetting a deployment)."""
        n = 0
        with self._errors():
            async for key in self.redis.scan_iter(match=self.prefix + "*", count=1000):
                n += await self.redis.delete(key)
        return n


__all__ = ["RedisBroker", "split_url"]
