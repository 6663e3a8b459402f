"""The webhook sink against a real aiohttp receiver on 127.0.0.1 that checks signatures itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from couchpotato.records import Event
from couchpotato.urlguard import UrlGuard
from docsweb import (
    DocsWebSettings,
    MemoryCursorStore,
    SinkConfigError,
    SinkManager,
    SqliteCursorStore,
    parse_outputs,
    public_dict,
    sign,
    storage_dict,
    validate_outputs,
    verify_signature,
)
from docsweb.testing import wait_for
from katopotato.blobs import FileBlobStore
from katopotato.broker import Broker

from .conftest import Receiver, replay, stream_source


def webhook(receiver: Receiver, **extra: object) -> dict[str, object]:
    return {"type": "webhook", "url": receiver.url, "secret": receiver.secret, "max_backoff_s": 0.3, **extra}


async def test_signed_events_reach_the_receiver_once_in_order(
    broker: Broker, receiver: Receiver, recorded: list[Event], local_guard: UrlGuard
) -> None:
    ids = await replay(broker, "hooked", recorded)
    await receiver.start()
    outputs = parse_outputs([webhook(receiver)])
    await validate_outputs(outputs, settings=DocsWebSettings(), guard=local_guard)
    async with SinkManager("hooked", stream_source(broker, "hooked"), MemoryCursorStore(), guard=local_guard) as m:
        await m.start(outputs)
        (status,) = await m.wait(30)
    assert status.state.health == "done" and status.state.cursor == ids[-1] and status.state.delivered == len(ids)
    assert receiver.bad_signatures == 0 and receiver.duplicates == 0
    assert [i for i, _e in receiver.received] == ids
    assert [e for _i, e in receiver.received] == [e.to_dict() for e in recorded]
    assert len(receiver.posts) == len(ids), "one POST per event"
    assert status.target == receiver.url.split("?")[0], "the target shown by the API carries no query"


async def test_batches_and_event_filter(
    broker: Broker, receiver: Receiver, recorded: list[Event], local_guard: UrlGuard
) -> None:
    ids = await replay(broker, "batched", recorded)
    await receiver.start()
    spec = webhook(receiver, batch_max_events=4, batch_interval_s=0.2, events=["segment", "end"])
    async with SinkManager("batched", stream_source(broker, "batched"), MemoryCursorStore(), guard=local_guard) as m:
        await m.start(parse_outputs([spec]))
        (status,) = await m.wait(30)
    wanted = [(i, e.to_dict()) for i, e in zip(ids, recorded, strict=True) if e.type in ("segment", "end")]
    assert receiver.received == wanted and receiver.bad_signatures == 0
    assert len(receiver.posts) <= len(wanted) // 4 + 2
    assert status.state.cursor == ids[-1]


async def test_a_receiver_down_for_a_while_gets_every_event_afterwards(
    broker: Broker, receiver: Receiver, recorded: list[Event], local_guard: UrlGuard, tmp_path: Path
) -> None:
    """Down: the webhook is reported failing after retry_for_s, and the file sink of the same session
    is not held back. Back up: every event arrives, in order, once."""
    ids = await replay(broker, "outage", recorded)
    blobs = FileBlobStore(tmp_path)
    outputs = parse_outputs([webhook(receiver, retry_for_s=1.0), {"type": "file", "format": "jsonl", "interval_s": 0}])
    manager = SinkManager(
        "outage", stream_source(broker, "outage"), MemoryCursorStore(), blobs=blobs, guard=local_guard
    )
    await manager.start(outputs)
    hook, files = manager.runners.values()
    await wait_for(lambda: files.state.health == "done" and hook.state.health == "failing", timeout_s=20)
    assert hook.state.cursor is None and "cannot POST" in hook.state.last_error
    assert hook.status.to_dict()["status"] == "failing"
    receiver.fail_next = 2  # and it stumbles at first
    await receiver.start()
    await manager.wait(30)
    await manager.close()
    assert hook.state.health == "done" and hook.state.failing_since is None
    assert [i for i, _e in receiver.received] == ids
    assert receiver.duplicates == 0 and receiver.bad_signatures == 0
    assert len(receiver.posts) == len(ids) + 2


async def test_restart_resumes_after_the_stored_cursor(
    broker: Broker, receiver: Receiver, recorded: list[Event], local_guard: UrlGuard, tmp_path: Path
) -> None:
    half = len(recorded) // 2
    ids = await replay(broker, "restart", recorded[:half])
    await receiver.start()
    spec = parse_outputs([webhook(receiver)])
    async with SqliteCursorStore(tmp_path / "c.db") as store:
        first = SinkManager("restart", stream_source(broker, "restart"), store, guard=local_guard)
        await first.start(spec)
        await wait_for(lambda: len(receiver.received) == half)
        await first.close()  # the service stops
    ids += await replay(broker, "restart", recorded[half:])
    async with SqliteCursorStore(tmp_path / "c.db") as store:
        second = SinkManager("restart", stream_source(broker, "restart"), store, guard=local_guard)
        await second.start(spec)
        await second.wait(30)
        await second.close()
        assert await store.load("restart", spec[0].id or "")
    assert [i for i, _e in receiver.received] == ids and receiver.duplicates == 0


async def test_private_addresses_are_refused(broker: Broker, receiver: Receiver, recorded: list[Event]) -> None:
    await receiver.start()
    outputs = parse_outputs([webhook(receiver)])
    with pytest.raises(SinkConfigError, match="loopback"):
        await validate_outputs(outputs, settings=DocsWebSettings(), guard=UrlGuard())
    await replay(broker, "ssrf", recorded[:2])
    async with SinkManager("ssrf", stream_source(broker, "ssrf"), MemoryCursorStore(), guard=UrlGuard()) as m:
        await m.start(outputs)
        (runner,) = m.runners.values()
        await wait_for(lambda: "loopback" in runner.state.last_error)
    assert receiver.posts == []


def test_signature_helpers_agree_with_hmac() -> None:
    body = json.dumps({"v": 1, "event_id": "1-0"}).encode()
    ts = str(int(time.time()))
    signature = sign("s" * 20, ts, body)
    assert verify_signature("s" * 20, body, ts, signature)
    assert not verify_signature("t" * 20, body, ts, signature)
    assert not verify_signature("s" * 20, body + b" ", ts, signature)
    assert not verify_signature(
        "s" * 20, body, str(int(time.time()) - 3600), sign("s" * 20, str(int(time.time()) - 3600), body)
    )
    receiver = Receiver("s" * 20, 0)
    assert receiver.verify(body, ts, signature)


def test_secrets_stay_out_of_public_views(receiver: Receiver) -> None:
    (spec,) = parse_outputs([webhook(receiver)])
    assert receiver.secret not in json.dumps(public_dict(spec))
    assert storage_dict(spec)["secret"] == receiver.secret
    assert parse_outputs([storage_dict(spec)]) == [spec], "the stored form re-creates the same sink"
    with pytest.raises(Exception, match="at least 16"):
        parse_outputs([{"type": "webhook", "url": receiver.url, "secret": "short"}])
