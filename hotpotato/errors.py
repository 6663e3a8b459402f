"""Errors of supervision and the swap.

    HotPotatoError
    ├── SwapError                       a swap could not be done (the old instance keeps running)
    │   ├── SwapRefused                 it was not started: one is in progress, the session is not capturing…
    │   ├── AlignmentError              the new instance's audio could not be aligned with confidence
    │   └── SwapTimeout(TimeoutError)   a step of the swap took too long
    └── SerializationError(couchpotato.errors.SerializationError)
                                        a swap record could not be decoded

Every message is one line meant for a user (it ends up in ``swap_failed`` events).
"""

from __future__ import annotations

from couchpotato.errors import SerializationError as CoreSerializationError


class HotPotatoError(Exception):
    """Base of every error hotpotato raises on purpose."""


class SwapError(HotPotatoError):
    """A swap could not be done; the old capture instance keeps running."""


class SwapRefused(SwapError):
    """A swap was not started (one is already in progress, or the session is not capturing)."""


class AlignmentError(SwapError):
    """The new instance's audio could not be aligned to the session's clock with confidence."""


class SwapTimeout(SwapError, TimeoutError):
    """A step of the swap did not happen in time."""


class SerializationError(HotPotatoError, CoreSerializationError):
    """A swap record could not be decoded (a ``ValueError``, and the core's ``SerializationError``)."""


__all__ = ["AlignmentError", "HotPotatoError", "SerializationError", "SwapError", "SwapRefused", "SwapTimeout"]
