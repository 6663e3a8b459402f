"""The broker contract: both backends behave the same (parametrised in conftest.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from katopotato.broker import Broker, LeaseState
from katopotato.errors import JobNotFound, JobStateError, SerializationError
from katopotato.jobs import Job, JobStatus, job_events_stream, new_job_id

pytestmark = pytest.mark.timeout(30)


def make(kind: str = "t.a", priority: int = 100, **kw: object) -> Job:
    return Job(id=new_job_id(), kind=kind, params={"x": 1, "empty": [], "nested": {}}, priority=priority, **kw)  # type: ignore[arg-type]


async def test_enqueue_is_durable_and_round_trips(broker: Broker) -> None:
    job, created = await broker.enqueue(make())
    assert created and job.status is JobStatus.QUEUED and job.created_at > 0
    got = await broker.get_job(job.id)
    assert got is not None
    assert got.params == {"x": 1, "empty": [], "nested": {}}
    assert got.status is JobStatus.QUEUED and got.tries == 0
    assert [j.id for j in await broker.list_jobs()] == [job.id]
    assert await broker.get_job("nope") is None


async def test_idempotency_key_returns_the_first_job(broker: Broker) -> None:
    a, created_a = await broker.enqueue(make(idempotency_key="k1"))
    b, created_b = await broker.enqueue(make(idempotency_key="k1"))
    assert created_a and not created_b and b.id == a.id
    assert len(await broker.list_jobs()) == 1
    assert len(await broker.claim("w", ["t.a"], max_jobs=5)) == 1


async def test_find_job_by_idempotency_key(broker: Broker) -> None:
    job, _ = await broker.enqueue(make(idempotency_key="asr:s1:0"), idempotency_ttl_s=0.3)
    found = await broker.find_job("asr:s1:0")
    assert found is not None and found.id == job.id and found.params == job.params
    assert await broker.find_job("asr:s1:1") is None
    await asyncio.sleep(0.4)
    assert await broker.find_job("asr:s1:0") is None  # the key is kept for its TTL only


async def test_list_jobs_pages_newest_first(broker: Broker) -> None:
    made = []
    for i in range(5):
        job, _ = await broker.enqueue(make("t.a" if i % 2 else "t.b"))
        made.append(job.id)
        await asyncio.sleep(0.002)  # distinct creation times
    newest_first = list(reversed(made))
    page1 = await broker.list_jobs(limit=2)
    page2 = await broker.list_jobs(limit=2, before=page1[-1].id)
    page3 = await broker.list_jobs(limit=2, before=page2[-1].id)
    assert [j.id for j in page1 + page2 + page3] == newest_first
    assert [j.id for j in await broker.list_jobs(kind="t.a", before=made[4])] == [made[3], made[1]]
    with pytest.raises(JobNotFound):
        await broker.list_jobs(before="no-such-job")


async def test_claim_ack_and_result_ttl(broker: Broker) -> None:
    job, _ = await broker.enqueue(make())
    [lease] = await broker.claim("w1", ["t.a"])
    assert lease.job.id == job.id and lease.job.status is JobStatus.RUNNING and lease.job.tries == 1
    assert lease.job.worker == "w1"
    assert await broker.claim("w2", ["t.a"]) == []  # delivered once while leased
    assert await broker.succeed(lease, {"ok": [1, 2]}, result_ttl_s=0.3)
    done = await broker.get_job(job.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.result_ref
    assert await broker.result(job.id) == (True, {"ok": [1, 2]})
    assert not await broker.succeed(lease, "again")  # acked once
    await asyncio.sleep(0.4)
    assert await broker.result(job.id) == (False, None)


async def test_priorities_across_kinds(broker: Broker) -> None:
    batch, _ = await broker.enqueue(make("t.batch", 200))
    normal, _ = await broker.enqueue(make("t.a", 100))
    live, _ = await broker.enqueue(make("t.live", 0))
    order = [(await broker.claim("w", ["t.batch", "t.a", "t.live"]))[0].job.id for _ in range(3)]
    assert order == [live.id, normal.id, batch.id]


async def test_fifo_within_a_priority(broker: Broker) -> None:
    ids = [(await broker.enqueue(make()))[0].id for _ in range(5)]
    leases = await broker.claim("w", ["t.a"], max_jobs=10)
    assert [le.job.id for le in leases] == ids


async def test_per_kind_concurrency_limit_is_global(broker: Broker) -> None:
    for _ in range(4):
        await broker.enqueue(make("t.lim"))
    a = await broker.claim("w1", ["t.lim"], max_jobs=5, limits={"t.lim": 2})
    b = await broker.claim("w2", ["t.lim"], max_jobs=5, limits={"t.lim": 2})
    assert len(a) == 2 and b == []
    assert await broker.succeed(a[0], None)
    c = await broker.claim("w2", ["t.lim"], max_jobs=5, limits={"t.lim": 2})
    assert len(c) == 1


async def test_expired_lease_is_reclaimed_and_the_old_holder_cannot_ack(broker: Broker) -> None:
    job, _ = await broker.enqueue(make(max_tries=3))
    [first] = await broker.claim("dead-worker", ["t.a"], visibility_s=0.2)
    await asyncio.sleep(0.3)
    [second] = await broker.claim("w2", ["t.a"])
    assert second.job.id == job.id and second.job.tries == 2
    assert second.job.error and "lease expired" in second.job.error
    assert (await broker.heartbeat([first]))[job.id] is LeaseState.LOST
    assert not await broker.succeed(first, "zombie")
    assert await broker.succeed(second, "real")
    assert await broker.result(job.id) == (True, "real")


async def test_heartbeat_keeps_the_lease(broker: Broker) -> None:
    await broker.enqueue(make())
    [lease] = await broker.claim("w", ["t.a"], visibility_s=0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert (await broker.heartbeat([lease], visibility_s=0.3))[lease.job.id] is LeaseState.OK
    assert await broker.claim("w2", ["t.a"]) == []


async def test_retry_with_delay_then_dead_letter_and_requeue(broker: Broker) -> None:
    job, _ = await broker.enqueue(make(max_tries=2))
    [lease] = await broker.claim("w", ["t.a"])
    assert await broker.fail(lease, "boom 1", retry_in_s=0.3) == "queued"
    assert await broker.claim("w", ["t.a"]) == []  # not before its delay
    t0 = time.monotonic()
    await broker.wait_for_work("w", 5.0)
    [lease] = await broker.claim("w", ["t.a"])
    assert time.monotonic() - t0 < 2.0
    assert lease.job.tries == 2 and lease.job.error == "boom 1"
    assert await broker.fail(lease, "boom 2", retry_in_s=0.0) == "failed"  # tries used up
    dead = await broker.dead_letters()
    assert [j.id for j in dead] == [job.id] and dead[0].error == "boom 2"
    again = await broker.requeue(job.id)
    assert again.status is JobStatus.QUEUED and again.tries == 0
    assert await broker.dead_letters() == []
    [lease] = await broker.claim("w", ["t.a"])
    assert await broker.succeed(lease, 1)
    with pytest.raises(JobStateError):
        await broker.requeue(job.id)
    with pytest.raises(JobNotFound):
        await broker.requeue("missing")


async def test_release_hands_back_without_counting_a_try(broker: Broker) -> None:
    await broker.enqueue(make())
    [lease] = await broker.claim("w", ["t.a"])
    assert await broker.release(lease)
    [again] = await broker.claim("w2", ["t.a"])
    assert again.job.tries == 1


async def test_cancel_queued_and_running(broker: Broker) -> None:
    queued, _ = await broker.enqueue(make())
    deferred, _ = await broker.enqueue(make(), defer_s=30)
    assert (await broker.cancel(queued.id)).status is JobStatus.CANCELLED
    assert (await broker.cancel(deferred.id)).status is JobStatus.CANCELLED
    running, _ = await broker.enqueue(make())
    [lease] = await broker.claim("w", ["t.a"])
    assert lease.job.id == running.id
    marked = await broker.cancel(running.id)
    assert marked.status is JobStatus.RUNNING and marked.cancel_requested
    assert (await broker.heartbeat([lease]))[running.id] is LeaseState.CANCEL
    assert await broker.finish_cancelled(lease)
    got = await broker.get_job(running.id)
    assert got is not None and got.status is JobStatus.CANCELLED
    assert await broker.claim("w", ["t.a"]) == []
    with pytest.raises(JobNotFound):
        await broker.cancel("missing")


async def test_progress_and_job_events(broker: Broker) -> None:
    job, _ = await broker.enqueue(make())
    [lease] = await broker.claim("w", ["t.a"])
    assert await broker.progress(lease, 1, 4, "a quarter") is LeaseState.OK
    got = await broker.get_job(job.id)
    assert got is not None and got.progress is not None and got.progress.total == 4
    await broker.succeed(lease, None)
    entries = await broker.read(job_events_stream(job.id))
    kinds = [(e.data["type"], e.data["status"]) for e in entries]
    assert kinds == [("status", "queued"), ("status", "running"), ("progress", "running"), ("status", "succeeded")]
    assert entries[2].data["progress"] == {"done": 1, "total": 4, "message": "a quarter"}
    later = await broker.read(job_events_stream(job.id), after=entries[1].id)
    assert [e.id for e in later] == [e.id for e in entries[2:]]


async def test_kv_compare_and_set_with_atomic_append(broker: Broker) -> None:
    assert await broker.kv_get("s") is None
    ids = await broker.kv_cas("s", 0, {"n": 1}, append_to="ev", entries=[{"a": 1}, {"a": 2}])
    assert ids is not None and len(ids) == 2
    assert await broker.kv_cas("s", 0, {"n": 99}, append_to="ev", entries=[{"a": 3}]) is None
    cur = await broker.kv_get("s")
    assert cur is not None and cur.value == {"n": 1} and cur.version == 1
    assert await broker.kv_cas("s", 1, {"n": 2}) == []
    assert [e.data["a"] for e in await broker.read("ev")] == [1, 2]
    await broker.kv_delete("s")
    assert await broker.kv_get("s") is None


async def test_concurrent_cas_commits_each_once(broker: Broker) -> None:
    async def bump(i: int) -> None:
        while True:
            cur = await broker.kv_get("c")
            version, value = (cur.version, cur.value) if cur else (0, {"seen": []})
            value["seen"].append(i)
            if await broker.kv_cas("c", version, value, append_to="c-ev", entries=[{"i": i}]) is not None:
                return

    await asyncio.gather(*(bump(i) for i in range(20)))
    cur = await broker.kv_get("c")
    assert cur is not None and sorted(cur.value["seen"]) == list(range(20)) and cur.version == 20
    assert sorted(e.data["i"] for e in await broker.read("c-ev")) == list(range(20))


async def test_stream_blocking_read_wakes_on_append(broker: Broker) -> None:
    first = await broker.append("s", [{"n": 0}])
    reader = asyncio.create_task(broker.read("s", after=first[0], block_s=5))
    await asyncio.sleep(0.1)
    assert not reader.done()
    ids = await broker.append("s", [{"n": 1}])
    got = await asyncio.wait_for(reader, 2)
    assert [e.id for e in got] == ids and got[0].data == {"n": 1}
    assert await broker.read("s", after=ids[0], block_s=0.05) == []
    all_ids = [e.id for e in await broker.read("s")]
    assert all_ids == sorted(all_ids, key=lambda i: tuple(map(int, i.split("-"))))


async def test_a_capped_stream_keeps_its_newest_entries_and_expires(broker: Broker) -> None:
    for n in range(5):
        await broker.append("capped", [{"n": n}], maxlen=3, ttl_s=0.5)
    assert [e.data["n"] for e in await broker.read("capped")] == [2, 3, 4]
    await asyncio.sleep(0.8)
    assert await broker.read("capped") == [], "the stream went with its TTL"
    await broker.append("uncapped", [{"n": n} for n in range(5)])
    assert len(await broker.read("uncapped")) == 5


async def test_wait_for_work_wakes_on_enqueue(broker: Broker) -> None:
    assert await broker.claim("w", ["t.a"]) == []
    waiter = asyncio.create_task(broker.wait_for_work("w", 5.0))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await broker.enqueue(make())
    await asyncio.wait_for(waiter, 2)
    assert len(await broker.claim("w", ["t.a"])) == 1


async def test_results_must_be_json(broker: Broker) -> None:
    await broker.enqueue(make())
    [lease] = await broker.claim("w", ["t.a"])
    with pytest.raises(SerializationError):
        await broker.succeed(lease, object())


async def test_stats(broker: Broker) -> None:
    await broker.enqueue(make())
    await broker.enqueue(make("t.b"))
    await broker.enqueue(make(), defer_s=60)
    await broker.claim("w", ["t.b"])
    st = await broker.stats(["t.a", "t.b"])
    assert st.ready == {"t.a": 1, "t.b": 0} and st.delayed == 1 and st.running == 1 and st.dead == 0
