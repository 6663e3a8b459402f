"""Prometheus metrics of the service, in a registry of its own (one per app, so tests can run
several apps in one process).

Counters and histograms are updated where things happen; gauges that describe the current state
(sessions by status, queue depth, real-time factor, SSE subscribers) are refreshed right before
each scrape by ``refresh``.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
STATUSES = ("starting", "running", "stopping", "completed", "failed", "stopped", "interrupted")


class Metrics:
    """Every metric the service exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Gauge("katopotato_sessions", "Sessions by status.", ["status"], registry=r)
        self.sessions_started = Counter("katopotato_sessions_started", "Sessions started.", registry=r)
        self.segments = Counter(
            "katopotato_segments", "Committed transcript events by type (segment, gap).", ["type"], registry=r
        )
        self.asr_seconds = Counter(
            "katopotato_asr_seconds", "Seconds spent in ASR (summed over worker threads).", registry=r
        )
        self.audio_seconds = Counter("katopotato_audio_seconds", "Seconds of audio captured.", registry=r)
        self.realtime_factor = Gauge(
            "katopotato_realtime_factor",
            "ASR seconds per audio second over the running sessions (below 1 keeps up).",
            registry=r,
        )
        self.queue_depth = Gauge(
            "katopotato_queue_depth", "Segments cut but not yet committed, over running sessions.", registry=r
        )
        self.commit_latency = Histogram(
            "katopotato_commit_latency_seconds",
            "From the end of a segment's audio (wall clock) to its commit in the event log.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.event_lag = Histogram(
            "katopotato_event_lag_seconds",
            "From an event's commit to its write on an SSE stream.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.swaps = Counter(
            "katopotato_swaps",
            "HotPotato's capture swaps by event (swap_started, swap_completed, swap_failed) and trigger.",
            ["event", "trigger"],
            registry=r,
        )
        self.sse_subscribers = Gauge("katopotato_sse_subscribers", "Open SSE streams.", registry=r)
        self.http_requests = Counter(
            "katopotato_http_requests", "HTTP requests by route and status.", ["route", "status"], registry=r
        )

    def refresh(
        self,
        *,
        sessions_by_status: Mapping[str, int],
        queue_depth: int,
        realtime_factor: float | None,
        sse_subscribers: int,
    ) -> None:
        for status in {*STATUSES, *sessions_by_status}:
            self.sessions.labels(status).set(sessions_by_status.get(status, 0))
        self.queue_depth.set(queue_depth)
        self.realtime_factor.set(realtime_factor if realtime_factor is not None else 0.0)
        self.sse_subscribers.set(sse_subscribers)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Metrics"]
