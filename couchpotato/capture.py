"""From a source the user names to transcript events: resolve, decode, run the live pipeline.

The egress proxy lives exactly as long as the capture, and every network request the capture makes
goes through it (see egress.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from .asr import AsrEngine
from .constants import STALL_TIMEOUT_S
from .decoder import PcmDecoder
from .egress import egress_proxy
from .pipeline import Pipeline, PipelineOptions, SourceInfo
from .records import Event
from .source import MediaSource, resolve_direct
from .urlguard import UrlGuard


@dataclass(frozen=True)
class CaptureOptions:
    """How a source is read.

    Attributes:
        realtime: read a recorded file at 1x, as if it were live.
        duration_s: stop after this much media time.
        stall_timeout_s: no audio for this long is a stall.
        allow_local: local paths and stdin are allowed (the CLI), or not (the service).
    """

    realtime: bool = False
    duration_s: float | None = None
    stall_timeout_s: float = STALL_TIMEOUT_S
    allow_local: bool = True


async def capture_events(
    spec: str,
    engine: AsrEngine,
    guard: UrlGuard,
    capture: CaptureOptions | None = None,
    options: PipelineOptions | None = None,
    *,
    pipeline: Pipeline | None = None,
) -> AsyncGenerator[Event, None]:
    """Transcript events for ``spec``; raises a SourceError if capture cannot even start."""
    capture = capture or CaptureOptions()
    pipeline = pipeline or Pipeline(engine, options)
    async with egress_proxy(guard) as proxy:
        source: MediaSource = await resolve_direct(spec, guard, proxy, allow_local=capture.allow_local)
        decoder = PcmDecoder(
            source,
            proxy_url=proxy.url,
            realtime=capture.realtime,
            stall_timeout_s=capture.stall_timeout_s,
            duration_s=capture.duration_s,
            refusal=proxy.last_refusal,
        )
        info = SourceInfo(spec, source.kind, source.reason, lambda: decoder.media_epoch)
        async for event in pipeline.events(decoder, info):
            yield event


__all__ = ["CaptureOptions", "capture_events"]
