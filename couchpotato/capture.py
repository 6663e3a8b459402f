"""From a source the user names to PCM and transcript events.

``Capture`` is an async context manager that owns every resource a capture needs (the egress proxy;
for a page, the browser session: display, sink, recorder and Chromium) and releases them in reverse
order, even on error or cancellation. Entering it resolves the source (``resolve.py``: direct media,
a page yt-dlp resolves, or a page for the browser, by ``mode``), so a caller (the service) can
report what kind of source was chosen, or refuse it, before any audio flows; a browser session is
started on entry too, so that its failures are reported as early. ``capture_events`` is the
one-call form.

Health is taken from the first second (``health.py``): ``cap.health`` is the latest sample, and
``CaptureOptions.on_health`` receives each one. A page silent from its start for
``no_audio_timeout_s`` ends the capture with ``NoAudio``; once it has played sound, silence is a
health state (``silent``), not an end, unless ``silence_timeout_s`` is set.

For HotPotato (a second instance of a capture placed on the first one's clock), a direct source
can be started at a position (``start_s``), a live HLS stream further back in its window
(``live_start_index``), with the stream time of the first sample reported (``timestamps``,
``await cap.clock()``) and without the decoder's own reconnects (``reconnect_attempts=0``: the
supervisor replaces a failed instance instead, without losing the outage). ``cap.alive()`` adds,
for a page, whether Chromium still has a renderer: a crashed tab and a quiet page both give digital
silence, only that tells them apart. ``cap.errors()`` are the error lines its processes printed.
``cap.fault()`` says, for a page, why the capture is broken although every process lives (Chromium
asked over its DevTools pipe): its page has rendered no frame ``FIRST_FRAME_TIMEOUT_S`` after
Chromium started, or a media element has played audibly for ``SILENT_SINK_S`` while the sink stayed
silent from the start (what a Chromium that "plays nothing" looks like); HotPotato's supervisor
swaps such an instance.

Every network request of a capture goes through its egress proxy (see egress.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from .asr import AsrEngine
from .browser import BrowserOptions, BrowserSession
from .browser.constants import (
    BROKEN_PAGE_RESTARTS,
    FIRST_FRAME_TIMEOUT_S,
    PAGE_POLL_S,
    PAGE_STATE_TIMEOUT_S,
    SILENT_SINK_S,
)
from .browser.devtools import DevToolsError, PageState
from .constants import SAMPLE_RATE_HZ, STALL_TIMEOUT_S
from .decoder import PcmChunk, PcmDecoder
from .egress import EgressProxy
from .health import NO_AUDIO_TIMEOUT_S, HealthMonitor, HealthSample
from .pipeline import Pipeline, PipelineOptions, SourceInfo
from .records import LiveEvent
from .resolve import Mode, resolve_source
from .source import MediaSource
from .urlguard import UrlGuard

log = logging.getLogger(__name__)

TAB_POLL_S = 0.5  # how often a browser capture checks that Chromium still has a renderer


@dataclass(frozen=True)
class CaptureOptions:
    """How a source is read.

    Attributes:
        realtime: read a recorded file at 1x, as if it were live.
        duration_s: stop after this much media time.
        stall_timeout_s: no audio for this long is a stall.
        allow_local: local paths and stdin are allowed (the CLI), or not (the service).
        mode: ``auto`` (direct media where it works, else the browser), ``direct`` or ``browser``.
        no_audio_timeout_s: a page (browser capture) silent from its start this long ends with
            ``NoAudio``; None never does. Once the page has played sound it no longer applies.
            Direct media is not judged by its silence.
        silence_timeout_s: a page silent this long after it played sound ends with
            ``SilenceTimeout``; None (the default) never does: a pause is a health state.
        heard_sound: the session this capture continues has had sound already (a swapped-in
            instance): the no-audio timeout does not apply to it.
        restart_broken_page: a page whose Chromium renders or plays nothing (``fault()``) gets a
            new Chromium in the same session, up to ``BROKEN_PAGE_RESTARTS`` times (the CLI); off
            where HotPotato swaps the whole instance instead (the service).
        record_video: keep an MP4 of the screen and sound of a browser capture at this path.
        browser: how pages are captured (display size, PulseAudio server, Chromium binary).
        on_health: called with each health sample (once per second of media); must not block.
        start_s: start a recorded direct source at this position (the media clock starts there).
        live_start_index: start a live HLS stream at this segment of its window (negative: from
            the end), to read audio already past the live edge.
        timestamps: learn the stream time of the first sample (``await cap.clock()``); None: for a
            live HLS stream, whose reconnects it keeps free of replayed and misplaced audio.
        reconnect_attempts: reconnects of a live direct source before its error is raised (None:
            the decoder's default).
    """

    realtime: bool = False
    duration_s: float | None = None
    stall_timeout_s: float = STALL_TIMEOUT_S
    allow_local: bool = True
    mode: Mode = "auto"
    no_audio_timeout_s: float | None = NO_AUDIO_TIMEOUT_S
    silence_timeout_s: float | None = None
    heard_sound: bool = False
    restart_broken_page: bool = False
    record_video: Path | None = None
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    on_health: Callable[[HealthSample], None] | None = None
    start_s: float | None = None
    live_start_index: int | None = None
    timestamps: bool | None = None
    reconnect_attempts: int | None = None


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
        self._tab_alive = True
        self._fault = ""
        self.page: PageState | None = None  # what the page said last (a page only)

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
                watch = asyncio.create_task(self._watch_tab(self.browser))
                self._stack.push_async_callback(_cancel, watch)
                page = asyncio.create_task(self._watch_page(self.browser))
                self._stack.push_async_callback(_cancel, page)
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
    def decoder(self) -> PcmDecoder | None:
        """FFmpeg decoding a direct source, once ``pcm()`` was called (None for a page)."""
        return self._decoder

    async def clock(self, timeout_s: float = 5.0) -> tuple[int, float] | None:
        """``(media sample, stream time)`` of the first sample, with ``timestamps``; else None."""
        return await self._decoder.wait_clock(timeout_s) if self._decoder is not None else None

    def alive(self) -> dict[str, bool]:
        """Whether each process of the capture is running; for a page, ``tab``: Chromium still has
        a renderer (it has none once the tab crashed)."""
        state = self.monitor.alive() if self.monitor is not None else {}
        if self.browser is not None:
            state["tab"] = self._tab_alive
        return state

    def errors(self) -> tuple[int, str]:
        """How many error lines the capture's FFmpeg printed, and the last one (for a page, Chromium's
        last complaint too)."""
        decoder = self._decoder or (self.browser.recorder.decoder if self.browser and self.browser.recorder else None)
        total = decoder.errors_total if decoder is not None else 0
        last = decoder.error_lines[-1][1] if decoder is not None and decoder.error_lines else ""
        if self.browser is not None and self.browser.chromium is not None and not last:
            last = self.browser.chromium.last_complaint()
        return total, last

    def fault(self) -> str:
        """Why this capture is broken although its processes live ("" when it is not): for a page, no
        frame rendered, or media playing into a silent sink (see the module docstring)."""
        return self._fault

    async def _watch_page(self, browser: BrowserSession) -> None:
        while True:
            fault = await self._page_fault(browser)
            if not self.options.restart_broken_page or browser.restarts >= BROKEN_PAGE_RESTARTS:
                await asyncio.Event().wait()  # reported by fault() from now on: HotPotato's to act on
            await browser.restart_chromium(fault)
            self._fault = ""

    async def _page_fault(self, browser: BrowserSession) -> str:
        """Watch the page until it is broken (see ``fault``); the reason, also left in ``fault()``."""
        chromium = browser.chromium
        assert chromium is not None and chromium.started_at is not None
        rendered = False
        playing_since: float | None = None
        why = "no answer yet"
        while True:
            await asyncio.sleep(PAGE_POLL_S)
            state: PageState | None = None
            try:
                state = await chromium.devtools.page_state(PAGE_STATE_TIMEOUT_S)
                self.page = state
            except DevToolsError as e:
                why = str(e)
            now = time.monotonic()
            rendered = rendered or (state is not None and state.frame)
            if not rendered and now - chromium.started_at >= FIRST_FRAME_TIMEOUT_S:
                self._fault = (
                    f"the page has rendered no frame {now - chromium.started_at:.0f} s after Chromium started "
                    f"(DevTools: {why})"
                )
                return self._fault
            playing_since = (playing_since or now) if state is not None and state.playing else None
            monitor = self.monitor
            if (
                playing_since is not None
                and monitor is not None
                and not monitor.heard_sound
                and now - playing_since >= SILENT_SINK_S
                and monitor.silent_s >= SILENT_SINK_S
            ):
                self._fault = (
                    f"a media element of the page has played for {now - playing_since:.0f} s while the "
                    f"session's sink stayed silent ({monitor.silent_s:.0f} s)"
                )
                return self._fault

    async def _watch_tab(self, browser: BrowserSession) -> None:
        seen = False
        while True:
            pid = browser.chromium.pid if browser.chromium is not None else None
            renderers = await asyncio.to_thread(_renderers, pid) if pid else 0
            seen = seen or renderers > 0
            self._tab_alive = renderers > 0 or not seen
            await asyncio.sleep(TAB_POLL_S)

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
                silence_timeout_s=opts.silence_timeout_s,
                heard_sound=opts.heard_sound,
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
            start_s=opts.start_s,
            live_start_index=opts.live_start_index,
            timestamps=self.source.kind == "hls" and self.source.live if opts.timestamps is None else opts.timestamps,
        )
        if opts.reconnect_attempts is not None:
            decoder.reconnect_attempts = opts.reconnect_attempts
        self.monitor = HealthMonitor(
            self.spec,
            heard_sound=opts.heard_sound,
            processes={"ffmpeg": lambda: decoder.running},
            on_sample=opts.on_health,
        )
        return self.monitor.watch(decoder)


def _alive(browser: BrowserSession, name: str) -> Callable[[], bool]:
    return lambda: browser.alive().get(name, False)


def _renderers(pid: int) -> int:
    """Chromium's renderer processes (one per tab, plus spares); 0 when it has none or is gone."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0
    count = 0
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            if child.status() != psutil.STATUS_ZOMBIE and "--type=renderer" in child.cmdline():
                count += 1
    return count


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


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
) -> AsyncGenerator[LiveEvent, None]:
    """Transcript events for ``spec``; raises a SourceError if capture cannot even start."""
    pipeline = pipeline or Pipeline(engine, options)
    async with Capture(spec, guard, capture) as cap:
        async for event in pipeline.events(cap.pcm(), cap.info()):
            yield event


__all__ = ["Capture", "CaptureOptions", "capture_events"]
