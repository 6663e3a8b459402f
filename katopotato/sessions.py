"""Session lifecycle: the store that records a session durably, and the runners that run it.

Two parts with a seam between them:

* ``SessionStore`` is the only writer of session state. Every event a session produces goes
  through ``record`` (or ``set_status``/``finish``), which in **one transaction** appends it to
  the durable event log, inserts a committed segment into ``segments`` and the search index (when
  the index lives in the database) and updates the session's counters; only then is it published
  to live subscribers. So what a client has seen is always on disk, and what is on disk is
  searchable.
* ``SessionRunner`` is what makes events happen: ``katopotato.distributed.DistributedRunner``
  (capture and ASR as jobs on the scheduler, the resequencer's state in the broker) feeds the
  resequencer's output to ``SessionStore.record``.

Statuses: ``starting`` (source resolved, no audio yet) → ``running`` (audio flows) →
``stopping`` (DELETE asked for a stop) → one of ``completed`` (end of the source), ``failed``
(the source or ASR failed), ``stopped`` (DELETE), ``interrupted`` (the service stopped or
crashed while it ran; marked at shutdown or at the next start). Each change is also a ``status``
event in the log, and the log always ends with the core's ``end`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import secrets
import time
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from couchpotato.constants import SAMPLE_RATE_HZ
from couchpotato.decoder import PcmChunk
from couchpotato.health import NO_AUDIO_TIMEOUT_S
from couchpotato.pcm import encode_pcm16
from couchpotato.records import EndEvent, Event, GapEvent, SessionEvent, TranscriptEvent, dumps
from couchpotato.resolve import MODES, Mode

from .blobs import BlobStore
from .db import Database, OutputRow, SegmentRow, SessionRow
from .errors import AudioNotKept, SessionError, SessionNotFound, UnsupportedOption
from .events import EventLog, StoredEvent
from .metrics import Metrics
from .search import SearchBackend, SegmentDoc

log = logging.getLogger(__name__)

ACTIVE_STATUSES = ("starting", "running", "stopping")
TERMINAL_STATUSES = ("completed", "failed", "stopped", "interrupted")
STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES
SILENT_REPORT_S = 5.0  # the core's "silent" is reported once the silence lasts this long
AUDIO_FLUSH_BYTES = SAMPLE_RATE_HZ * 2  # kept audio is written about once a second
MAX_CLIP_S = 120.0


@dataclass(frozen=True)
class SessionSpec:
    """What a client asked for.

    Attributes:
        url: the source (network URLs only: the service never reads local paths or stdin).
        mode: how the source is captured: ``auto`` (direct media where it works, else the
            browser), ``direct`` (FFmpeg, through yt-dlp for pages) or ``browser`` (Chromium).
        realtime: read recorded media at 1x, as if live (live sources are live anyway).
        language: spoken language.
        vocabulary: names and terms the decoder should prefer.
        latency: the segmenter's latency profile (``couchpotato.segmenter.LATENCY_PROFILES``).
        title: shown in the console and in search hits.
        keep_audio: keep the captured audio for playback.
        outputs: the session's transcript sinks, as ``docsweb.storage_dict`` (secrets included:
            stored with the session, never sent to clients), each with its id.
        no_audio_timeout_s: a page silent from its start this long ends with ``no_audio``.
        silence_timeout_s: a page silent this long after sound ends with ``silence_timeout``
            (None: never; silence after sound is a health state).
    """

    url: str
    mode: Mode = "auto"
    realtime: bool = False
    language: str = "en"
    vocabulary: tuple[str, ...] = ()
    latency: str = "balanced"
    title: str = ""
    keep_audio: bool = True
    outputs: tuple[dict[str, Any], ...] = ()
    no_audio_timeout_s: float | None = NO_AUDIO_TIMEOUT_S
    silence_timeout_s: float | None = None
    id: str = field(default_factory=lambda: secrets.token_hex(6))


@dataclass(frozen=True)
class SessionRecord:
    """A session as stored (see ``SessionRow``)."""

    id: str
    url: str
    title: str
    mode: str
    realtime: bool
    language: str
    vocabulary: tuple[str, ...]
    keep_audio: bool
    status: str
    health: str
    source_kind: str
    source_reason: str
    error: str | None
    committed_seq: int | None
    segments: int
    gaps: int
    duration_s: float
    media_epoch: float | None
    last_event_id: int
    created_by: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    job_id: str | None = None
    stream_cursor: str | None = None
    latency: str = "balanced"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_mapping(cls, m: Any) -> SessionRecord:
        d = dict(m)
        d["vocabulary"] = tuple(d.get("vocabulary") or ())
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LiveInfo:
    """What only the process running a session knows, fresher than the store."""

    health: str
    duration_s: float
    queue_depth: int
    asr_s: float
    level_dbfs: float | None
    silent_s: float | None = None  # how long the source has been quiet, while its health is silent


def status_line(status: str, **extra: Any) -> str:
    """A ``status`` event's JSON line (the same shape as the core's events)."""
    d: dict[str, Any] = {"type": "status", "status": status, "at": round(time.time(), 3)}
    d.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def check_options(spec: SessionSpec, model: str) -> None:
    """Refuse what no runner can honour: an unknown mode, a language the ASR model does not know."""
    if spec.mode not in MODES:
        raise UnsupportedOption(f"unknown mode {spec.mode!r}; modes are {', '.join(MODES)}")
    if model.endswith(".en") and spec.language != "en":
        raise UnsupportedOption(
            f"the ASR model {model} only knows English; language {spec.language!r} is not available"
        )


def default_title(url: str) -> str:
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return (name or parts.hostname or url)[:200]


class SessionStore:
    """Sessions and their logs in the database; the one place session state is written."""

    def __init__(self, db: Database, events: EventLog, search: SearchBackend, metrics: Metrics | None = None) -> None:
        self.db = db
        self.events = events
        self.search = search
        self.metrics = metrics
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def _session_tx(self, session_id: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction holding the session's row lock: one writer per session at a time.

        Event ids are the next after the last, so two writers of one session (its pipeline and its
        health monitor here, or two processes on PostgreSQL) must not interleave; the asyncio lock
        orders this process's writers, ``FOR UPDATE`` on the session row orders processes.
        """
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock, self.db.write() as conn:
            await conn.execute(select(SessionRow.id).where(SessionRow.id == session_id).with_for_update())
            yield conn

    # --- writing -------------------------------------------------------------------------------

    async def create(
        self, spec: SessionSpec, *, source_kind: str, source_reason: str, created_by: str = ""
    ) -> SessionRecord:
        now = time.time()
        async with self.db.write() as conn:
            await conn.execute(
                insert(SessionRow).values(
                    id=spec.id,
                    url=spec.url,
                    title=spec.title or default_title(spec.url),
                    mode=spec.mode,
                    realtime=spec.realtime,
                    language=spec.language,
                    vocabulary=list(spec.vocabulary),
                    latency=spec.latency,
                    keep_audio=spec.keep_audio,
                    status="starting",
                    health="unknown",
                    source_kind=source_kind,
                    source_reason=source_reason,
                    created_by=created_by,
                    created_at=now,
                )
            )
            if spec.outputs:
                await conn.execute(
                    insert(OutputRow),
                    [
                        {
                            "session_id": spec.id,
                            "sink_id": o["id"],
                            "position": i,
                            "type": o["type"],
                            "spec": o,
                            "created_at": now,
                        }
                        for i, o in enumerate(spec.outputs)
                    ],
                )
            stored = await self.events.insert(conn, spec.id, [("status", status_line("starting"))])
            await self._touch(conn, spec.id, stored)
        self.events.publish(stored)
        if self.metrics:
            self.metrics.sessions_started.inc()
        record = await self.get(spec.id)
        assert record is not None
        return record

    async def record(
        self, session_id: str, event: Event, *, duration_s: float | None = None, cursor: str | None = None
    ) -> StoredEvent:
        """Append one of the core's events durably; index it when it is a committed segment.

        ``cursor`` (the id of the broker stream entry the event came from) is stored in the same
        transaction, so a runner that resumes the stream after it never records an event twice.
        """
        now = time.time()
        docs: list[SegmentDoc] = []
        values: dict[str, Any] = {}
        if duration_s is not None:
            values["duration_s"] = duration_s
        if cursor is not None:
            values["stream_cursor"] = cursor
        async with self._session_tx(session_id) as conn:
            stored = await self.events.insert(conn, session_id, [(event.type, dumps(event))])
            if isinstance(event, TranscriptEvent):
                values.update(committed_seq=event.seq, segments=SessionRow.segments + 1)
                if event.text.strip():
                    row_id = (
                        await conn.execute(
                            insert(SegmentRow)
                            .values(
                                session_id=session_id,
                                seq=event.seq,
                                start_s=event.start,
                                end_s=event.end,
                                text=event.text,
                                emitted_at=event.emitted_at or now,
                            )
                            .returning(SegmentRow.id)
                        )
                    ).scalar_one()
                    docs.append(
                        SegmentDoc(
                            row_id, session_id, event.seq, event.start, event.end, event.text, event.emitted_at or now
                        )
                    )
                    if self.search.transactional:
                        await self.search.index(docs, conn)
            elif isinstance(event, GapEvent):
                values.update(committed_seq=event.seq, gaps=SessionRow.gaps + 1)
            elif isinstance(event, SessionEvent):
                values.update(media_epoch=event.media_epoch, started_at=now)
            await self._touch(conn, session_id, stored, **values)
        self.events.publish(stored)
        if docs and not self.search.transactional:
            try:
                await self.search.index(docs)
            except Exception as e:  # the transcript is safe; only search misses this segment
                log.warning("session %s: indexing seq %d failed: %s", session_id, docs[0].seq, e)
        return stored[0]

    async def note(self, session_id: str, data: dict[str, Any], *, cursor: str | None = None) -> StoredEvent:
        """Append a service event that is not the core's (HotPotato's ``swap_started``,
        ``swap_completed``, ``swap_failed``): ``data`` with its ``type`` is the JSON line clients get.
        ``cursor`` as in ``record``."""
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        values: dict[str, Any] = {} if cursor is None else {"stream_cursor": cursor}
        async with self._session_tx(session_id) as conn:
            stored = await self.events.insert(conn, session_id, [(str(data["type"]), line)])
            await self._touch(conn, session_id, stored, **values)
        self.events.publish(stored)
        return stored[0]

    async def set_status(
        self,
        session_id: str,
        status: str,
        *,
        health: str | None = None,
        error: str | None = None,
        silent_s: float | None = None,
    ) -> StoredEvent:
        """A ``status`` event (with ``silent_s``, how long the source has been quiet, when given)."""
        async with self._session_tx(session_id) as conn:
            line = status_line(status, health=health, error=error, silent_s=silent_s)
            stored = await self.events.insert(conn, session_id, [("status", line)])
            values: dict[str, Any] = {"status": status}
            if health is not None:
                values["health"] = health
            if error is not None:
                values["error"] = error
            await self._touch(conn, session_id, stored, **values)
        self.events.publish(stored)
        return stored[0]

    async def finish(
        self,
        session_id: str,
        status: str,
        end: EndEvent,
        *,
        error: str | None = None,
        duration_s: float | None = None,
    ) -> list[StoredEvent]:
        """The final status and the ``end`` event, together; a finished session is left as it is."""
        assert status in TERMINAL_STATUSES, status
        async with self._session_tx(session_id) as conn:
            current = (
                await conn.execute(select(SessionRow.status).where(SessionRow.id == session_id))
            ).scalar_one_or_none()
            if current is None or current in TERMINAL_STATUSES:
                return []
            stored = await self.events.insert(
                conn,
                session_id,
                [("status", status_line(status, error=error, health="ended")), ("end", dumps(end))],
            )
            values: dict[str, Any] = {"status": status, "health": "ended", "ended_at": time.time()}
            if error is not None:
                values["error"] = error
            if duration_s is not None:
                values["duration_s"] = duration_s
            await self._touch(conn, session_id, stored, **values)
        self.events.publish(stored)
        self._locks.pop(session_id, None)
        return stored

    async def set_job(self, session_id: str, job_id: str) -> None:
        """The session's capture job on the scheduler."""
        async with self._session_tx(session_id) as conn:
            await conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(job_id=job_id))

    async def active_ids(self) -> list[str]:
        """Sessions marked starting, running or stopping, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(SessionRow.id).where(SessionRow.status.in_(ACTIVE_STATUSES)).order_by(SessionRow.created_at)
            )
            return [str(r[0]) for r in rows]

    async def interrupt(self, session_id: str, reason: str) -> bool:
        """Mark one session ``interrupted`` (its committed part stays); False if it had ended."""
        record = await self.get(session_id)
        if record is None or not record.active:
            return False
        segments = (record.committed_seq + 1) if record.committed_seq is not None else 0
        end = EndEvent("interrupted", reason, segments)
        return bool(await self.finish(session_id, "interrupted", end, error=reason))

    async def interrupt_active(self, reason: str) -> list[str]:
        """Mark every session still marked active as ``interrupted`` (at start, after a crash)."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(SessionRow.id, SessionRow.committed_seq).where(SessionRow.status.in_(ACTIVE_STATUSES))
                )
            ).all()
        for sid, committed in rows:
            segments = (committed + 1) if committed is not None else 0
            await self.finish(sid, "interrupted", EndEvent("interrupted", reason, segments), error=reason)
        return [sid for sid, _ in rows]

    async def _touch(
        self, conn: AsyncConnection, session_id: str, stored: Sequence[StoredEvent], **values: Any
    ) -> None:
        values["last_event_id"] = stored[-1].id
        await conn.execute(update(SessionRow).where(SessionRow.id == session_id).values(**values))

    # --- reading -------------------------------------------------------------------------------

    async def get(self, session_id: str) -> SessionRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(SessionRow.__table__).where(SessionRow.id == session_id))).one_or_none()
        return SessionRecord.from_mapping(row._mapping) if row is not None else None

    async def require(self, session_id: str) -> SessionRecord:
        record = await self.get(session_id)
        if record is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return record

    async def list(
        self, *, status: str | None = None, limit: int = 50, after: tuple[float, str] | None = None
    ) -> tuple[list[SessionRecord], tuple[float, str] | None]:
        """Newest first; ``after`` is the (created_at, id) of the last session of the previous page."""
        table = SessionRow.__table__
        stmt = select(table).order_by(SessionRow.created_at.desc(), SessionRow.id.desc()).limit(limit + 1)
        if status:
            stmt = stmt.where(SessionRow.status == status)
        if after is not None:
            created, sid = after
            stmt = stmt.where(
                (SessionRow.created_at < created) | ((SessionRow.created_at == created) & (SessionRow.id < sid))
            )
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        records = [SessionRecord.from_mapping(r._mapping) for r in rows[:limit]]
        more = len(rows) > limit
        return records, ((records[-1].created_at, records[-1].id) if more else None)

    async def titles(self, session_ids: Sequence[str]) -> dict[str, str]:
        if not session_ids:
            return {}
        async with self.db.read() as conn:
            rows = (
                await conn.execute(select(SessionRow.id, SessionRow.title).where(SessionRow.id.in_(set(session_ids))))
            ).all()
        return {sid: title for sid, title in rows}

    async def count_by_status(self) -> dict[str, int]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(SessionRow.status, func.count()).group_by(SessionRow.status))).all()
        return {status: int(n) for status, n in rows}


# --- runners ------------------------------------------------------------------------------------


@runtime_checkable
class SessionRunner(Protocol):
    """Runs sessions; records everything through a ``SessionStore``.

    ``start`` returns once the source is accepted (or raises a ``couchpotato.errors.SourceError``
    saying why not, or ``UnsupportedOption``); the session then runs on its own until its source
    ends, it fails, or ``stop`` is called. ``recover`` is called once at service start for sessions
    left active by a previous process; ``close`` at shutdown.
    """

    async def start(self, spec: SessionSpec, *, created_by: str = "") -> SessionRecord: ...

    async def stop(self, session_id: str) -> bool:
        """Ask a running session to stop; False when it is not running here."""
        ...

    def live(self, session_id: str) -> LiveInfo | None:
        """Fresh health and counters of a session running here, None otherwise."""
        ...

    def running(self) -> list[str]: ...

    async def recover(self) -> list[str]: ...

    async def close(self) -> None: ...


class AudioKeeper:
    """Keeps a session's captured audio as 16-bit PCM placed by media time, for playback.

    The file is ``<blobs dir>/sessions/<id>/audio.pcm``; sample ``n`` of the media clock is at byte
    ``2n``, so a reconnect's jump in the clock leaves silence, not a shift. Writes happen in a
    thread, about once a second.
    """

    rate_hz = SAMPLE_RATE_HZ

    def __init__(self, path: Path) -> None:
        self.path = path
        self._buf = bytearray()
        self._buf_start = 0
        self._pending: asyncio.Future[None] | None = None

    @staticmethod
    def path_for(blobs_dir: Path, session_id: str) -> Path:
        return blobs_dir / "sessions" / session_id / "audio.pcm"

    async def write(self, chunk: PcmChunk) -> None:
        if not self._buf:
            self._buf_start = chunk.start_sample
        elif chunk.start_sample != self._buf_start + len(self._buf) // 2:
            await self.flush()
            self._buf_start = chunk.start_sample
        self._buf += encode_pcm16(chunk.samples)
        if len(self._buf) >= AUDIO_FLUSH_BYTES:
            await self.flush()

    async def write_pcm16(self, start_sample: int, data: bytes) -> None:
        """Place 16-bit little-endian PCM (a segment's audio) at ``start_sample`` of the media clock."""
        await self.flush()
        await asyncio.to_thread(self._write_at, max(0, start_sample) * 2, data[: len(data) - len(data) % 2])

    async def flush(self) -> None:
        if not self._buf:
            return
        data, offset = bytes(self._buf), self._buf_start * 2
        self._buf.clear()
        await asyncio.to_thread(self._write_at, offset, data)

    def _write_at(self, offset: int, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("r+b" if self.path.exists() else "wb") as f:
            f.seek(offset)
            f.write(data)

    @staticmethod
    def clip(path: Path, start_s: float, end_s: float) -> bytes:
        """A WAV of ``[start_s, end_s)`` of the kept audio (blocking: call in a thread)."""
        if not path.exists():
            raise AudioNotKept("this session kept no audio")
        start_s = max(0.0, start_s)
        end_s = min(end_s, start_s + MAX_CLIP_S)
        first = int(start_s * SAMPLE_RATE_HZ)
        count = max(0, int(end_s * SAMPLE_RATE_HZ) - first)
        with path.open("rb") as f:
            f.seek(first * 2)
            data = f.read(count * 2)
        if not data:
            raise AudioNotKept(f"no audio kept at {start_s:.2f} s")
        return _wav(data)


def _wav(pcm16: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(pcm16[: len(pcm16) - len(pcm16) % 2])
    return out.getvalue()


class BlobAudioKeeper:
    """Keeps a session's captured audio in a blob store that is not a directory (S3), for playback.

    Each committed segment's 16-bit PCM is one blob, ``sessions/<id>/audio/<first sample>.s16``
    (the media-clock sample it starts at, 12 digits, so keys sort by time); a clip is read back by
    listing the session's prefix and placing the blobs it overlaps by media time. Segments that
    overlap carry the same samples of the same clock, so either copy is right.
    """

    rate_hz = SAMPLE_RATE_HZ

    def __init__(self, blobs: BlobStore, session_id: str) -> None:
        self.blobs = blobs
        self.prefix = self.prefix_for(session_id)

    @staticmethod
    def prefix_for(session_id: str) -> str:
        return f"sessions/{session_id}/audio/"

    async def write_pcm16(self, start_sample: int, data: bytes) -> None:
        """Keep 16-bit little-endian PCM (a segment's audio) starting at ``start_sample``."""
        await self.blobs.put(f"{self.prefix}{max(0, start_sample):012d}.s16", data[: len(data) - len(data) % 2])

    async def flush(self) -> None:
        """Every write is a blob of its own: nothing is buffered."""

    @classmethod
    async def clip(cls, blobs: BlobStore, session_id: str, start_s: float, end_s: float) -> bytes:
        """A WAV of ``[start_s, end_s)`` of the kept audio."""
        prefix = cls.prefix_for(session_id)
        kept = []
        for info in await blobs.list(prefix):
            name = info.key[len(prefix) :].removesuffix(".s16")
            if name.isdigit():
                kept.append((int(name), info))
        if not kept:
            raise AudioNotKept("this session kept no audio")
        start_s = max(0.0, start_s)
        end_s = min(end_s, start_s + MAX_CLIP_S)
        first = int(start_s * SAMPLE_RATE_HZ)
        stop = max(first, int(end_s * SAMPLE_RATE_HZ))
        buf = bytearray((stop - first) * 2)
        filled = 0  # bytes of buf up to the end of the last sample found (a file read ends there too)
        for at, info in kept:
            if at >= stop or at + info.size // 2 <= first:
                continue
            data = await blobs.get(info.key)
            lo, hi = max(at, first), min(at + len(data) // 2, stop)
            buf[(lo - first) * 2 : (hi - first) * 2] = data[(lo - at) * 2 : (hi - at) * 2]
            filled = max(filled, (hi - first) * 2)
        if not filled:
            raise AudioNotKept(f"no audio kept at {start_s:.2f} s")
        return _wav(bytes(buf[:filled]))


__all__ = [
    "ACTIVE_STATUSES",
    "MODES",
    "STATUSES",
    "TERMINAL_STATUSES",
    "AudioKeeper",
    "AudioNotKept",
    "BlobAudioKeeper",
    "LiveInfo",
    "SessionError",
    "SessionNotFound",
    "SessionRecord",
    "SessionRunner",
    "SessionSpec",
    "SessionStore",
    "UnsupportedOption",
    "check_options",
    "default_title",
    "status_line",
]
