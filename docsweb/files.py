"""The file sink: TXT, SRT, VTT or JSONL in the blob store (local directory or S3), kept current.

The blob store replaces whole objects atomically, so the file is rewritten with the new events
appended (at most once per ``interval_s``; the runner batches what arrives meanwhile): a reader
always sees a valid file holding a prefix of the transcript. The text comes from the core's
writers (``couchpotato.formats``), exactly what ``couchpotato transcribe --format`` prints.

Beside the file, ``<key>.state.json`` records which event it ends with, its length and the
subtitle cue count, written after the file. On restart the sink trusts that state over the
runner's cursor: a file written without its state (a crash in between) is cut back to the length
the state names and the events after it are written again, so nothing is doubled; a file lost
from the store is written again from the first event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Protocol

from couchpotato.formats import Writer

from .base import BatchPolicy, Item, SinkContext
from .constants import FILE_BATCH_MAX_EVENTS, FILE_KEY_TEMPLATE, FILE_STATE_SUFFIX
from .errors import SinkConfigError, SinkRetry
from .specs import FileSpec

log = logging.getLogger(__name__)
EXTENSIONS = {"text": "txt", "jsonl": "jsonl", "srt": "srt", "vtt": "vtt"}


def file_key(spec: FileSpec, session_id: str) -> str:
    """The blob key of a file output."""
    return (spec.key or FILE_KEY_TEMPLATE).format(session_id=session_id, sink_id=spec.id, ext=EXTENSIONS[spec.format])


class BlobWriter(Protocol):
    """The part of katopotato's ``BlobStore`` the sink uses; ``get`` raises FileNotFoundError (or a
    subclass, like ``BlobNotFound``) for a missing key."""

    async def put(self, key: str, data: bytes) -> str: ...

    async def get(self, key: str) -> bytes: ...


class FileSink:
    """Writes a session's transcript to one blob (see the module docstring)."""

    type = "file"

    def __init__(self, spec: FileSpec, *, session_id: str, blobs: BlobWriter) -> None:
        if not spec.id:
            raise SinkConfigError("the sink spec has no id (use specs.with_ids)")
        self.id = spec.id
        self.spec = spec
        self.blobs = blobs
        self.key = file_key(spec, session_id)
        self.state_key = self.key + FILE_STATE_SUFFIX
        self.policy = BatchPolicy(spec.interval_s, FILE_BATCH_MAX_EVENTS, spec.retry_for_s, spec.max_backoff_s)
        self.writer = Writer(spec.format)
        self.content = b""
        self.writes = 0

    @property
    def target(self) -> str:
        return self.key

    async def _get(self, key: str) -> bytes | None:
        try:
            return await self.blobs.get(key)
        except FileNotFoundError:
            return None
        except Exception as e:
            raise SinkRetry(f"cannot read {key} from the blob store: {e}") from e

    async def open(self, ctx: SinkContext) -> str | None:
        self.writer = Writer(self.spec.format)
        raw = await self._get(self.state_key)
        if raw is None:
            if ctx.stored_cursor is not None:
                log.warning("%s is gone from the blob store: writing it again from the start", self.key)
            self.content = self.writer.header().encode()
            return None
        try:
            state = json.loads(raw)
            length, cue, cursor = int(state["length"]), int(state["cue"]), state["cursor"]
        except (ValueError, KeyError, TypeError) as e:
            raise SinkRetry(f"{self.state_key} is not a state file this sink wrote: {e}") from e
        content = await self._get(self.key) or b""
        if len(content) < length:
            log.warning("%s is shorter than its state says: writing it again from the start", self.key)
            self.content = self.writer.header().encode()
            return None
        self.content = content[:length]
        self.writer.cue = cue
        return None if cursor is None else str(cursor)

    async def ready(self) -> None:
        return None

    async def deliver(self, batch: Sequence[Item]) -> None:
        cue = self.writer.cue
        try:
            text = "".join(self.writer.write(i.event) for i in batch)
            content = self.content + text.encode()
            await self._put(self.key, content)
            state = {"v": 1, "cursor": batch[-1].event_id, "length": len(content), "cue": self.writer.cue}
            await self._put(self.state_key, json.dumps(state).encode())
        except BaseException:
            self.writer.cue = cue  # the batch is written again from the same state
            raise
        self.content = content
        self.writes += 1

    async def _put(self, key: str, data: bytes) -> None:
        try:
            await self.blobs.put(key, data)
        except Exception as e:
            raise SinkRetry(f"cannot write {key} to the blob store: {e}") from e

    async def close(self) -> None:
        return None


__all__ = ["EXTENSIONS", "BlobWriter", "FileSink", "file_key"]
