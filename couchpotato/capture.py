"""From a source the user names to PCM and transcript events.

``Capture`` is an async context manager that owns every resource a capture needs (the egress proxy
now; the display, sink and browser of browser capture later) and releases them in reverse order,
even on error. Entering it resolves the source, so a caller (the service) can report what kind of
source was chosen, or refuse it, before any audio flows. ``capture_events`` is the one-call form.

Every network request of a capture goes through its egress proxy (see egress.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from .asr import AsrEngine
from .constants import STALL_TIMEOUT_S
from .decoder import PcmChunk, PcmDecoder
from .egress import EgressProxy
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


class Capture:
    """One capture of one source. ``async with Capture(...) as cap``: ``cap.source`` is resolved."""

    def __init__(self, spec: str, guard: UrlGuard, options: CaptureOptions | None = None) -> None:
        self.spec = spec
        self.guard = guard
        self.options = options or CaptureOptions()
        self.source: MediaSource | None = None
        self._stack = contextlib.AsyncExitStack()
        self._proxy: EgressProxy | None = None
        self._decoder: PcmDecoder | None = None

    async def __aenter__(self) -> Capture:
        try:
            self._proxy = await self._stack.enter_async_context(EgressProxy(self.guard))
            self.source = await resolve_direct(
                self.spec, self.guard, self._proxy, allow_local=self.options.allow_local
            )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()

    @property
    def media_epoch(self) -> float | None:
        """Unix time of media t=0, known once audio flows."""
        return self._decoder.media_epoch if self._decoder else None

    def info(self) -> SourceInfo:
        assert self.source is not None, "enter the Capture first"
        return SourceInfo(self.spec, self.source.kind, self.source.reason, lambda: self.media_epoch)

    def pcm(self) -> AsyncIterator[PcmChunk]:
        """The source's audio as 16 kHz mono PCM chunks on the media clock."""
        assert self.source is not None and self._proxy is not None, "enter the Capture first"
        self._decoder = PcmDecoder(
            self.source,
            proxy_url=self._proxy.url,
            realtime=self.options.realtime,
            stall_timeout_s=self.options.stall_timeout_s,
            duration_s=self.options.duration_s,
            refusal=self._proxy.last_refusal,
        )
        return self._decoder.__aiter__()


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
    pipeline = pipeline or Pipeline(engine, options)
    async with Capture(spec, guard, capture) as cap:
        async for event in pipeline.events(cap.pcm(), cap.info()):
            yield event


__all__ = ["Capture", "CaptureOptions", "capture_events"]
