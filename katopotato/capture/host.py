"""What a capture instance gets from its job (``Host``: emit segments, start and cancel the new
instance of a swap, report progress), its knobs (``SwapSettings``) and how its run ended
(``Outcome``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from couchpotato.segmenter import AudioSegment
from hotpotato import constants as HC
from hotpotato.align import AlignOptions
from hotpotato.supervisor import SupervisorOptions

# --- what the job provides ------------------------------------------------------------------------


class Drafter(Protocol):
    """Interim text of the open segment, for the session's live viewers (optional: a capture
    instance without one drafts nothing)."""

    async def wanted(self) -> bool:
        """Whether anybody follows the session's partials now (cheap: called for every chunk)."""
        ...

    async def draft(self, seg: AudioSegment) -> None:
        """Decode the open segment's audio so far and publish what it says, unless the ASR pool is
        busy with finals (then the round is skipped)."""
        ...


class Host(Protocol):
    """What the capture job does for the runtime."""

    job_id: str
    worker: str

    async def emit(self, seg: AudioSegment) -> None:
        """Store the segment's audio and enqueue its transcription."""
        ...

    async def start_successor(self, swap_id: str) -> str:
        """Enqueue the new capture instance of a swap; its job id."""
        ...

    async def cancel_job(self, job_id: str) -> None: ...

    async def progress(self, audio_s: float, message: str) -> None: ...


@dataclass(frozen=True)
class SwapSettings:
    """Supervision and swap knobs of the capture job (from the transcription plugin's settings).

    Attributes:
        supervise: act on a broken capture (else only report health).
        supervisor: the supervisor's thresholds.
        align: how alignment is searched and trusted.
        start_timeout_s: swap_started → the new instance aligned.
        cutover_timeout_s: aligned → a low-energy cut.
        commit_timeout_s: cut → the new instance's commit.
        overlap_s: audio the new instance captures before it tries to align.
    """

    supervise: bool = True
    supervisor: SupervisorOptions = field(default_factory=SupervisorOptions)
    align: AlignOptions = field(default_factory=AlignOptions)
    start_timeout_s: float = HC.SWAP_START_TIMEOUT_S
    cutover_timeout_s: float = HC.CUTOVER_TIMEOUT_S
    commit_timeout_s: float = HC.COMMIT_TIMEOUT_S
    overlap_s: float = HC.OVERLAP_S


@dataclass(frozen=True)
class Outcome:
    """How a capture instance's run ended.

    ``ended``: the source ended (``error`` when it failed); ``handed_over``: another instance owns
    the session now; ``stale``: a new instance whose swap was over before it could take part;
    ``failed``: a new instance whose swap failed (the old one carries on).
    """

    kind: Literal["ended", "handed_over", "stale", "failed"]
    error: str = ""
    swap_id: str = ""


__all__ = ["Drafter", "Host", "Outcome", "SwapSettings"]
