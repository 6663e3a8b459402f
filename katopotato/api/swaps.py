"""HotPotato's swap for the API (``POST``/``GET /v1/sessions/{id}/swap``) and for Python callers:
ask a session's capture instance to swap (``request_swap``), read the swap's status
(``swap_status``) and its events (``swap_events``)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from couchpotato.constants import SAMPLE_RATE_HZ
from hotpotato.errors import SwapRefused
from hotpotato.records import SwapEvent, SwapState, is_swap_event
from hotpotato.swap import (
    SwapBroker,
    SwapStore,
    request,
)

from ..capture.state import CaptureState
from ..keys import capture_key, health_key, transcript_stream


class _HasBroker(Protocol):
    @property
    def broker(self) -> Any: ...


def _broker_of(target: SwapBroker | _HasBroker) -> SwapBroker:
    inner = getattr(target, "broker", None)
    return inner if inner is not None else target  # type: ignore[return-value]


async def request_swap(
    target: SwapBroker | _HasBroker, session_id: str, reason: str = "requested through the API", *, trigger: str = "api"
) -> SwapState:
    """Ask the session's capture instance to swap to a new one (``POST /v1/sessions/{id}/swap``).

    Returns the swap, ``requested``; the capture instance accepts it within a fraction of a second
    (``swap_started``), and ``swap_status`` / the session's events tell the outcome. Raises
    ``SwapRefused`` when the session is not capturing, or a swap is already in progress."""
    broker = _broker_of(target)
    cur = await broker.kv_get(capture_key(session_id))
    if cur is None:
        raise SwapRefused(f"session {session_id} is not being captured (unknown, or not started yet)")
    st = CaptureState.from_dict(cur.value)
    if st.source_done:
        raise SwapRefused(f"session {session_id}: its source has ended; there is nothing left to swap")
    if not st.announced:
        raise SwapRefused(f"session {session_id} is still starting (no audio yet); try again in a moment")
    swap = await SwapStore(broker, session_id, transcript_stream(session_id)).update(
        request(session_id, trigger, reason, time.time())
    )
    assert swap is not None
    return swap


async def swap_status(target: SwapBroker | _HasBroker, session_id: str) -> dict[str, Any]:
    """The session's current (or last) swap, recent ones, its capture instance's latest health and
    supervisor verdict, and where its capture is (``GET /v1/sessions/{id}/swap`` and the console)."""
    broker = _broker_of(target)
    record, _ = await SwapStore(broker, session_id, transcript_stream(session_id)).load()
    cap = await broker.kv_get(capture_key(session_id))
    health = await broker.kv_get(health_key(session_id))
    capture: dict[str, Any] | None = None
    if cap is not None:
        st = CaptureState.from_dict(cap.value)
        capture = {
            "epoch": st.epoch,
            "owner": st.owner,
            "next_seq": st.next_seq,
            "media_s": round(st.resume_sample / SAMPLE_RATE_HZ, 3),
            "source_kind": st.source_kind,
            "source_done": st.source_done,
            "cut_pending": st.handover is not None,
        }
    return {
        "session_id": session_id,
        "swap": record.current.to_dict() if record.current else None,
        "history": list(record.history),
        "health": dict(health.value) if health is not None else None,
        "capture": capture,
    }


async def swap_events(
    target: SwapBroker | _HasBroker, session_id: str, *, after: str = "0"
) -> list[tuple[str, SwapEvent]]:
    """The session's swap events so far (``swap_started``/``swap_completed``/``swap_failed``), with
    their stream ids."""
    broker = _broker_of(target)
    out: list[tuple[str, SwapEvent]] = []
    cursor = after or "0"
    while True:
        entries = await broker.read(transcript_stream(session_id), cursor, count=1000)
        if not entries:
            return out
        for e in entries:
            cursor = e.id
            if is_swap_event(e.data):
                out.append((e.id, SwapEvent.from_dict(e.data)))


__all__ = ["request_swap", "swap_events", "swap_status"]
