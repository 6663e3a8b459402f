"""HotPotato: health supervision of capture instances, and the zero-loss swap of one mid-stream.

Decisions and protocol, no I/O of their own beyond the broker (katopotato runs them in the capture
job, ``katopotato/capture/``):

- ``supervisor``: a silent source or a broken capture? (``Supervisor``, ``HealthProbe``, ``Verdict``)
- ``align``: where a new instance's audio sits on the session's clock (timestamps, cross-correlation)
- ``cutover``: the low-energy cut-over point, and the gate that holds the old instance's segments
- ``backfill``: how far back in an HLS live window a resumed instance starts
- ``swap``: the swap record, its transitions and events, the old instance's reference audio
- ``records``: ``SwapState``, ``SwapRecord``, ``SwapEvent``

See docs/hotpotato.md.
"""

from .align import Alignment, AlignOptions, Audio, ClockRef, align_timestamps, align_wallclock, align_xcorr
from .cutover import CutChoice, CutoverPlanner, Gate, QuietTracker
from .errors import AlignmentError, HotPotatoError, SerializationError, SwapError, SwapRefused, SwapTimeout
from .records import SwapEvent, SwapRecord, SwapState, is_swap_event
from .supervisor import HealthProbe, Supervisor, SupervisorOptions, Verdict
from .swap import SwapBroker, SwapStore

__all__ = [
    "AlignOptions",
    "Alignment",
    "AlignmentError",
    "Audio",
    "ClockRef",
    "CutChoice",
    "CutoverPlanner",
    "Gate",
    "HealthProbe",
    "HotPotatoError",
    "QuietTracker",
    "SerializationError",
    "Supervisor",
    "SupervisorOptions",
    "SwapBroker",
    "SwapError",
    "SwapEvent",
    "SwapRecord",
    "SwapRefused",
    "SwapState",
    "SwapStore",
    "SwapTimeout",
    "Verdict",
    "align_timestamps",
    "align_wallclock",
    "align_xcorr",
    "is_swap_event",
]
