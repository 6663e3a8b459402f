"""From a source the user names to PCM and transcript events.

``Capture`` is an async context manager that owns every resource a capture needs (the egress proxy;
for a page, the browser session: display, sink, recorder and Chromium) and releases them in reverse
order, even on error or cancellation. Entering it resolves the source (``resolve.py``: direct media,
a page yt-dlp resolves, or a page for the browser, by ``mode``), so a caller (the service) can
report what kind of source was chosen, or refuse it, before any audio flows; a browser session is
started on entry too, so that its failures are reported as early. ``capture_events`` is the
one-call form.

Health is taken from the first second (``health.py``): ``cap.health`` is the latest sample, and
``CaptureOptions.on_health`` receives each one. A page silent for ``no_audio_timeout_s`` ends the
capture with ``NoAudio``.

Every network request of a capture goes through its egress proxy (see egress.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .asr import AsrEngine
from .browser import BrowserOptions, BrowserSession
from .constants import SAMPLE_RATE_HZ, STALL_TIMEOUT_S
from .decoder import PcmChunk, PcmDecoder
from .egress import EgressProxy
from .health import NO_AUDIO_TIMEOUT_S, HealthMonitor, HealthSample
from .pipeline import Pipeline, PipelineOptions, SourceInfo
from .records import Event
from .resolve import Mode, resolve_source
from .source import MediaSource
from .urlguard import UrlGuard


@dataclass(frozen=True)
class CaptureOptions:
    """How a source is read.

    Attributes:
        realtime: read a recorded file at 1x, as if it were live.
        duration_s: stop after this much media time.
        stall_timeout_s: no audio for this long is a stall.
        allow_local: local paths and stdin are allowed (the CLI), or not (the service).
        mode: ``auto`` (direct media where it works, else the browser), ``direct`` or ``browser``.
        no_audio_timeout_s: a page (browser capture) silent this long ends with ``NoAudio``;
            None never does. Direct media is not judged by its silence.
        record_video: keep an MP4 of the screen and sound of a browser capture at this path.
        browser: how pages are captured (display size, PulseAudio server, Chromium binary).
        on_health: called with each health sample (once per second of media); must not block.
    """

    realtime: bool = False
    duration_s: float | None = None
    stall_timeout_s: float = STALL_TIMEOUT_S
    allow_local: bool = True
    mode: Mode = "auto"
    no_audio_timeout_s: float | None = NO_AUDIO_TIMEOUT_S
    record_video: Path | None = None
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    on_health: Callable[[HealthSample], None] | None = None


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
        self.browser: BrowserSession | None = None
        self.monitor: HealthMonitor | None = None

    async def __aenter__(self) -> Capture:
        opts = self.options
        try:
            self._proxy = await self._stack.enter_async_context(EgressProxy(self.guard))
            self.source = await resolve_source(
                self.spec, self.guard, self._proxy, mode=opts.mode, allow_local=opts.allow_local
            )
            if self.source.kind == "browser":
                browser = replace(opts.browser, record_video=opts.record_video, stall_timeout_s=opts.stall_timeout_s)
                self.browser = await self._stack.enter_async_context(
                    BrowserSession(self.source.url, proxy_url=self._proxy.url, options=browser)
                )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()

    @property
    def proxy(self) -> EgressProxy | None:
        """The egress proxy of this capture (its ``refusals`` say what the guard refused)."""
        return self._proxy

    @property
    def health(self) -> HealthSample | None:
        """The latest health sample, once a second of audio has flowed."""
        return self.monitor.latest if self.monitor else None

    @property
    def media_epoch(self) -> float | None:
        """Unix time of media t=0, known once audio flows."""
        if self.browser is not None:
            return self.browser.media_epoch
        return self._decoder.media_epoch if self._decoder else None

    def info(self) -> SourceInfo:
        assert self.source is not None, "enter the Capture first"
        return SourceInfo(self.spec, self.source.kind, self.source.reason, lambda: self.media_epoch)

    def pcm(self) -> AsyncIterator[PcmChunk]:
        """The source's audio as 16 kHz mono PCM chunks on the media clock, health taken on the way."""
        assert self.source is not None and self._proxy is not None, "enter the Capture first"
        opts = self.options
        if self.browser is not None:
            browser = self.browser
            self.monitor = HealthMonitor(
                self.spec,
                note="an HTML page rendered in Chromium",
                no_audio_timeout_s=opts.no_audio_timeout_s,
                processes={name: _alive(browser, name) for name in browser.alive()},
                on_sample=opts.on_health,
            )
            return self.monitor.watch(_limit(browser.pcm(), opts.duration_s))
        self._decoder = decoder = PcmDecoder(
            self.source,
            proxy_url=self._proxy.url,
            realtime=opts.realtime,
            stall_timeout_s=opts.stall_timeout_s,
            duration_s=opts.duration_s,
            refusal=self._proxy.last_refusal,
        )
        self.monitor = HealthMonitor(
            self.spec,
            processes={"ffmpeg": lambda: decoder.running},
            on_sample=opts.on_health,
        )
        return self.monitor.watch(decoder)


def _alive(browser: BrowserSession, name: str) -> Callable[[], bool]:
    return lambda: browser.alive().get(name, False)


async def _limit(pcm: AsyncGenerator[PcmChunk, None], duration_s: float | None) -> AsyncIterator[PcmChunk]:
    """``pcm`` cut after ``duration_s`` seconds of media."""
    limit = None if duration_s is None else int(duration_s * SAMPLE_RATE_HZ)
    async with contextlib.aclosing(pcm):
        async for chunk in pcm:
            if limit is not None and chunk.end_sample >= limit:
                yield PcmChunk(chunk.start_sample, chunk.samples[: max(0, limit - chunk.start_sample)])
                return
            yield chunk


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
