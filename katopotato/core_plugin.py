"""The built-in ``core`` plugin: batch transcription and the audio purge.

- ``core.transcribe_files``: transcribe a batch of recorded files (blob keys ``blob:<key>`` or
  URLs) with the core pipeline, one child job ``core.transcribe_file`` per file (fan-out), each
  writing its transcript as JSON lines to ``transcripts/<job id>.jsonl``.
- ``core.purge_audio``: delete audio blobs older than a given age; scheduled nightly.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from couchpotato.asr import AsrOptions
from couchpotato.capture import CaptureOptions, capture_events
from couchpotato.errors import SourceError
from couchpotato.pipeline import Pipeline, PipelineOptions
from couchpotato.records import EndEvent, GapEvent, TranscriptEvent, dumps
from couchpotato.urlguard import UrlGuard

from .asr_pool import asr_pool
from .blobs import blob_age_s
from .constants import AUDIO_BLOB_PREFIX, PRIORITY_BATCH, TRANSCRIPT_BLOB_PREFIX
from .errors import Abort
from .plugin import JobContext, Plugin


class CoreSettings(BaseModel):
    """Settings of the ``core`` plugin.

    Attributes:
        url_allowlist: CIDRs and hosts that batch sources may reach although not public.
        asr_model: faster-whisper model for batch transcription.
    """

    url_allowlist: str = ""
    asr_model: str = "tiny.en"


plugin = Plugin("core", "1.0", description="Built-in jobs: batch transcription, audio purge.", settings=CoreSettings)


class PurgeParams(BaseModel):
    prefix: str = AUDIO_BLOB_PREFIX
    older_than_s: float = Field(7 * 24 * 3600.0, ge=0)


@plugin.job("purge_audio", priority=PRIORITY_BATCH, max_tries=2)
async def purge_audio(ctx: JobContext, p: PurgeParams) -> dict[str, int]:
    """Delete audio blobs older than ``older_than_s``."""
    if not p.prefix.startswith(AUDIO_BLOB_PREFIX):
        raise Abort(f"purge_audio only deletes audio: prefix must start with {AUDIO_BLOB_PREFIX}")
    blobs = await ctx.blobs.list(p.prefix)
    old = [b for b in blobs if blob_age_s(b) >= p.older_than_s]
    deleted = size = 0
    for i, b in enumerate(old):
        if await ctx.blobs.delete(b.key):
            deleted += 1
            size += b.size
        if i % 100 == 99:
            await ctx.progress(i + 1, len(old), f"{deleted} deleted")
    return {"deleted": deleted, "bytes": size, "kept": len(blobs) - len(old)}


plugin.schedule("nightly_purge", "17 3 * * *", "purge_audio")


class TranscribeFileParams(BaseModel):
    source: str = Field(min_length=1, description="blob:<key> or an http(s) URL")
    language: str = "en"
    vocabulary: list[str] = Field(default_factory=list)


class TranscribeFilesParams(BaseModel):
    sources: list[str] = Field(min_length=1, max_length=1000)
    language: str = "en"
    vocabulary: list[str] = Field(default_factory=list)


@plugin.job("transcribe_file", priority=PRIORITY_BATCH, max_tries=2)
async def transcribe_file(ctx: JobContext, p: TranscribeFileParams) -> dict[str, Any]:
    """Transcribe one recorded file with the core pipeline; the transcript goes to a blob."""
    settings = ctx.settings
    assert isinstance(settings, CoreSettings)
    engine = (await asr_pool(settings.asr_model, 1)).engine
    options = PipelineOptions(
        session_id=ctx.job.id[:12], asr=AsrOptions(language=p.language, vocabulary=tuple(p.vocabulary))
    )
    pipeline = Pipeline(engine, options)
    lines: list[str] = []
    texts: list[str] = []
    end: EndEvent | None = None
    with tempfile.TemporaryDirectory(prefix="couchpotato-batch-") as tmp:
        if p.source.startswith("blob:"):
            key = p.source.removeprefix("blob:")
            path = Path(tmp) / (os.path.basename(key) or "audio")
            await asyncio.to_thread(path.write_bytes, await ctx.blobs.get(key))
            spec, allow_local = str(path), True
        else:
            spec, allow_local = p.source, False
        try:
            async for event in capture_events(
                spec,
                engine,
                UrlGuard.from_allowlist(settings.url_allowlist),
                CaptureOptions(allow_local=allow_local),
                pipeline=pipeline,
            ):
                lines.append(dumps(event))
                if isinstance(event, TranscriptEvent) and event.text:
                    texts.append(event.text)
                elif isinstance(event, EndEvent):
                    end = event
                if isinstance(event, TranscriptEvent | GapEvent):
                    await ctx.progress(pipeline.stats.committed + pipeline.stats.gaps, None, f"seq {event.seq}")
        except SourceError as e:
            raise Abort(f"{p.source}: {e}") from e
    out = f"{TRANSCRIPT_BLOB_PREFIX}{ctx.job.id}.jsonl"
    await ctx.blobs.put(out, ("\n".join(lines) + "\n").encode())
    return {
        "source": p.source,
        "transcript": out,
        "text": " ".join(texts),
        "segments": pipeline.stats.committed,
        "gaps": pipeline.stats.gaps,
        "audio_s": round(pipeline.stats.audio_s, 3),
        "error": end.error if end and end.error else None,
    }


@plugin.job("transcribe_files", priority=PRIORITY_BATCH, max_tries=2)
async def transcribe_files(ctx: JobContext, p: TranscribeFilesParams) -> dict[str, Any]:
    """Transcribe a batch of recorded files, one child job per file."""
    children = [TranscribeFileParams(source=s, language=p.language, vocabulary=p.vocabulary) for s in p.sources]
    await ctx.progress(0, len(children), "transcribing")
    results = await ctx.map("transcribe_file", children)
    return {"files": results}


__all__ = ["CoreSettings", "plugin"]
