"""Interim text in the service: the ``partial`` events of a session's open segment.

Who drafts: the capture instance that owns the session. It holds the open segment's audio, so no
audio travels for a draft, and it knows at once when it cuts; it decodes on its own process's ASR
pool (``asr_pool``), and only when a decoding thread is free, so under load drafts are skipped and
finals keep their latency. It drafts only while somebody follows the session's partials: an SSE
client with ``?partials=1`` keeps the key ``partials-wanted:<session>`` alive (a TTL ends it when
the client goes), so a session nobody watches costs no draft decodes.

Where they go: the capped, expiring broker stream ``partials:<session>``, never the durable log
(Google Docs, webhooks, files, search and exports hold final text only). The API process's SSE
route merges that stream into the session's events without ids (a resumed stream never replays a
partial), and drops a partial whose seq is already committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from couchpotato.asr import AsrOptions
from couchpotato.errors import AsrError
from couchpotato.partials import Drafts
from couchpotato.segmenter import AudioSegment

from .asr_pool import asr_pool
from .broker import Broker
from .errors import BrokerError
from .keys import partials_stream, partials_wanted_key

log = logging.getLogger("katopotato.drafts")

PARTIALS_KEPT = 16  # entries of partials:<session> kept (a client joining sees the newest)
PARTIALS_TTL_S = 600.0  # the stream goes this long after its last partial
WANTED_TTL_S = 10.0  # partials-wanted:<session> lives this long after a client's last refresh
WANTED_REFRESH_S = 3.0  # how often a following client refreshes it
WANTED_CHECK_S = 1.0  # how often the capture instance looks at it


@dataclass
class JobDrafter:
    """The capture job's ``Drafter`` (``katopotato.capture.host``): drafts on this process's ASR
    pool, published to the session's partials stream.

    Attributes:
        broker: where the partials go, and where the wanted key is read.
        session_id: the session.
        model, threads: the ASR pool to draft on (the one this process's ASR jobs use).
        options: decoding options (``draft=True``: one greedy pass).
        skipped: drafts skipped because every decoding thread was busy.
        published: partials published.
    """

    broker: Broker
    session_id: str
    model: str
    threads: int
    options: AsrOptions
    skipped: int = 0
    published: int = 0
    _drafts: Drafts = field(default_factory=Drafts)
    _wanted: bool = False
    _checked_at: float = -math.inf

    def __post_init__(self) -> None:
        self._drafts.session_id = self.session_id

    async def wanted(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= WANTED_CHECK_S:
            self._checked_at = now
            with contextlib.suppress(BrokerError):
                self._wanted = await self.broker.kv_get(partials_wanted_key(self.session_id)) is not None
        return self._wanted

    async def draft(self, seg: AudioSegment) -> None:
        pool = await asr_pool(self.model, self.threads)
        if not pool.free:
            self.skipped += 1
            return
        try:
            words = await pool.transcribe(seg.samples, self.options)
        except AsrError as e:
            log.debug("session %s: draft of seq %d failed: %s", self.session_id, seg.segment.seq, e)
            return
        offset = seg.segment.start
        events = self._drafts.update(seg.segment, [w.shifted(offset) for w in words], 0, time.time())
        if not events:
            return
        with contextlib.suppress(BrokerError):
            await self.broker.append(
                partials_stream(self.session_id),
                [ev.to_dict() for ev in events],
                maxlen=PARTIALS_KEPT,
                ttl_s=PARTIALS_TTL_S,
            )
            self.published += len(events)


async def want_partials(broker: Broker, session_id: str) -> None:
    """Say that a client follows the session's partials (for ``WANTED_TTL_S``)."""
    key = partials_wanted_key(session_id)
    with contextlib.suppress(BrokerError):
        cur = await broker.kv_get(key)
        await broker.kv_cas(key, cur.version if cur else 0, {"at": time.time()}, ttl_s=WANTED_TTL_S)


async def follow_partials(broker: Broker, session_id: str, *, block_s: float = 1.0) -> AsyncGenerator[dict[str, Any]]:
    """The session's partials as they come (the newest one first, if any), keeping the session's
    drafting on while iterated. Runs until closed; broker errors are retried."""
    stream = partials_stream(session_id)
    cursor = "0"
    refreshed = -math.inf
    first = True
    while True:
        if time.monotonic() - refreshed >= WANTED_REFRESH_S:
            await want_partials(broker, session_id)
            refreshed = time.monotonic()
        try:
            entries = await broker.read(stream, cursor, count=PARTIALS_KEPT if first else 100, block_s=block_s)
        except BrokerError as e:
            log.debug("session %s: reading partials failed: %s", session_id, e)
            await asyncio.sleep(block_s)
            continue
        if first and entries:
            entries = entries[-1:]  # a client joining sees the line being heard now, not the history
        first = False
        for entry in entries:
            cursor = entry.id
            yield entry.data


__all__ = [
    "PARTIALS_KEPT",
    "PARTIALS_TTL_S",
    "WANTED_TTL_S",
    "JobDrafter",
    "follow_partials",
    "want_partials",
]
