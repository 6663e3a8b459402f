"""The capture state of a session (``capture:<session>``), written only by the capture instance that
owns the session, with compare-and-set: an instance that lost ownership finds out at its next
write (``NotOwner``) and stops."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotpotato.swap import SwapBroker

from ..errors import NotOwner
from ..keys import capture_key, transcript_stream


@dataclass
class CaptureState:
    """Where a session's capture is (``capture:<id>``): what a worker taking it over needs.

    Attributes:
        next_seq: the next seq to cut.
        resume_sample: session sample up to which audio has been cut into segments.
        resume_wall: when the audio at ``resume_sample`` arrived (how far back an HLS backfill goes).
        media_epoch: Unix time of session media t=0.
        epoch: capture instance generation (each takeover or swap adds one).
        announced: the ``session`` event was appended.
        source_done: the source ended; only the end of the session is left.
        owner: the capture job that owns the session.
        clock: the source's stream time on the session's clock (``ClockRef``), when it has one.
        handover: ``{swap, cut, next_seq}``: the owner stopped emitting at ``cut`` for that swap.
        source_kind: what kind of source it is (file, hls, browser…).
        heard_sound: the session's source has made sound (a page's later instances are then not
            judged by the no-audio timeout: its silence is a pause).
    """

    next_seq: int = 0
    resume_sample: int = 0
    media_epoch: float | None = None
    epoch: int = 0
    announced: bool = False
    source_done: bool = False
    resume_wall: float | None = None
    owner: str = ""
    clock: dict[str, Any] | None = None
    handover: dict[str, Any] | None = None
    source_kind: str = ""
    heard_sound: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_seq": self.next_seq,
            "resume_sample": self.resume_sample,
            "media_epoch": self.media_epoch,
            "epoch": self.epoch,
            "announced": self.announced,
            "source_done": self.source_done,
            "resume_wall": self.resume_wall,
            "owner": self.owner,
            "clock": self.clock,
            "handover": self.handover,
            "source_kind": self.source_kind,
            "heard_sound": self.heard_sound,
            "updated_at": time.time(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaptureState:
        return cls(
            int(d["next_seq"]),
            int(d["resume_sample"]),
            d.get("media_epoch"),
            int(d.get("epoch", 0)),
            bool(d.get("announced", False)),
            bool(d.get("source_done", False)),
            d.get("resume_wall"),
            str(d.get("owner", "")),
            d.get("clock"),
            d.get("handover"),
            str(d.get("source_kind", "")),
            bool(d.get("heard_sound", False)),
        )


class CaptureStore:
    """The capture state, written by its owner only, with compare-and-set."""

    def __init__(self, broker: SwapBroker, session_id: str) -> None:
        self.broker = broker
        self.session_id = session_id
        self.key = capture_key(session_id)
        self.version = 0
        self.state = CaptureState()

    async def load(self) -> CaptureState:
        cur = await self.broker.kv_get(self.key)
        if cur is not None:
            self.state, self.version = CaptureState.from_dict(cur.value), cur.version
        return self.state

    async def save(self, *, entries: list[dict[str, Any]] | None = None) -> None:
        """Write the state; ``NotOwner`` if another instance wrote it since we last did."""
        ids = await self.broker.kv_cas(
            self.key,
            self.version,
            self.state.to_dict(),
            append_to=transcript_stream(self.session_id) if entries else None,
            entries=entries or (),
        )
        if ids is None:
            raise NotOwner(f"session {self.session_id} is being captured by another instance")
        self.version += 1


__all__ = ["CaptureState", "CaptureStore", "NotOwner"]
