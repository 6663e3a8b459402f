"""How a running job learns that its worker is shutting down.

A long-running job that can hand its work over itself (a capture session: HotPotato's swap to an
instance on another worker, with no audio lost) says so with ``current_drain().accept_handover()``.
On shutdown the worker sets its ``Drain.requested`` instead of cancelling it, and gives it up to
``handover_grace_s`` to finish; a job that cannot hand over calls ``Drain.hand_back()`` and is
handed back to the queue like the others. The worker (``katopotato.worker``) binds each job's
``Drain``; the job reads it with ``current_drain()``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Drain:
    """How a running job learns that its worker is shutting down (see the module docstring).

    Attributes:
        requested: set when the worker begins draining and the job accepted to hand over.
        handover: the job hands its work over itself when asked (``accept_handover``).
    """

    requested: asyncio.Event = field(default_factory=asyncio.Event)
    handover: bool = False
    _stop: Callable[[], None] | None = None

    def accept_handover(self) -> None:
        """On shutdown, ask this job to hand over (set ``requested``) instead of cancelling it."""
        self.handover = True

    def hand_back(self) -> None:
        """The job cannot hand over: stop it now and hand it back to the queue."""
        if self._stop is not None:
            self._stop()


_current_drain: contextvars.ContextVar[Drain | None] = contextvars.ContextVar("katopotato_drain", default=None)


def current_drain() -> Drain | None:
    """The running job's ``Drain`` (None outside a worker's job)."""
    return _current_drain.get()


def bind_drain(drain: Drain) -> None:
    """Make ``drain`` the running job's (the worker calls it in the job's task)."""
    _current_drain.set(drain)


__all__ = ["Drain", "bind_drain", "current_drain"]
