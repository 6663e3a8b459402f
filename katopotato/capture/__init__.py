"""The capture job's runtime: one capture instance owning a session, supervised, and swapped.

- ``state``: the session's capture state (``CaptureState``) and its owner-only store (``CaptureStore``).
- ``host``: what the job provides (``Host``), the knobs (``SwapSettings``), how a run ends (``Outcome``).
- ``instance``: the ``Instance`` record (everything that changes while an instance runs) and
  ``CaptureBase`` (its wiring; starting the capture, emitting segments, finishing).
- ``old_side``: the old side of a swap (start it, publish the reference audio, cut, follow it).
- ``supervision``: the health probe, the supervisor's verdict, failover.
- ``runtime``: the owner's loop (cut segments; each tick: supervise, drain, follow a swap).
- ``new_side``: the new side of a swap (start, align, wait for the cut, commit, then own).
- ``session``: ``SessionCapture``, the parts assembled; ``constants``: the tunables.

The API's swap helpers (request, status, events) are in ``katopotato.api.swaps``.
"""

from .host import Host, Outcome, SwapSettings
from .instance import Instance
from .session import SessionCapture
from .state import CaptureState, CaptureStore, NotOwner

__all__ = [
    "CaptureState",
    "CaptureStore",
    "Host",
    "Instance",
    "NotOwner",
    "Outcome",
    "SessionCapture",
    "SwapSettings",
]
