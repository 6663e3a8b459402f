"""The capture job's runtime: one capture instance owning a session, supervised, and swapped.

- ``state``: the session's capture state (``CaptureState``) and its owner-only store (``CaptureStore``).
- ``host``: what the job provides (``Host``), the knobs (``SwapSettings``), how a run ends (``Outcome``).
- ``session``: ``SessionCapture``: the owner's capture loop, its supervision, the old side of a
  swap and the new side (``take_over``).

The API's swap helpers (request, status, events) are in ``katopotato.api.swaps``.
"""

from .host import Host, Outcome, SwapSettings
from .session import SessionCapture
from .state import CaptureState, CaptureStore, NotOwner

__all__ = ["CaptureState", "CaptureStore", "Host", "NotOwner", "Outcome", "SessionCapture", "SwapSettings"]
