"""The capture job's runtime: one capture instance owning a session, supervised, and swapped.

``SessionCapture`` runs the core's ``Capture`` and ``Segmenter`` for a session's capture job and hands
each segment to the job (``Host.emit``: blob + ASR job). Around that loop it runs HotPotato:

- **supervision**: every ``SUPERVISE_INTERVAL_S`` a ``HealthProbe`` (last audio, bytes, level,
  processes including Chromium's renderer, FFmpeg error lines) goes to the ``Supervisor``; the
  probe and verdict are published under ``health:<session>`` every second. A ``broken`` verdict —
  or the capture raising an instance failure (FFmpeg killed, Chromium crashed; the decoder's own
  reconnects are off, the swap replaces them without losing the outage) — starts a **failover**: a
  ``resume`` swap whose cut is the last committed media time (for a source that cannot be read
  again — a page — the segmenter is flushed first, so what was captured up to the failure is kept).
- **the old side of a swap**: a ``requested`` swap (the API), a draining worker (SIGTERM: rolling
  deploy) or a failover enqueue the new instance as a capture job with ``takeover=<swap id>`` (any
  capture worker; a draining one claims nothing) and accept: ``swap_started``. The old instance
  publishes its audio as reference, keeps emitting segments until the new one is aligned, then
  cuts at a low-energy point (``hotpotato.cutover``), writes the cut into the capture state and
  holds back what its segmenter produces after it (``Gate``) until the outcome: dropped when the
  new instance commits, released when the swap fails.
- **the new side** (``take_over``): start the same source (a recorded one at the old instance's
  position, a live HLS stream back in its window when resuming), align (``hotpotato.align``:
  timestamps checked against the reference audio, or cross-correlation, or — resuming a source
  with neither — the wall clock), record ``aligned``, wait for the cut, commit (the capture state's
  compare-and-set moves ownership and appends ``swap_completed``), then run as the owner from the
  cut, epoch + 1, next seq.

The capture state ``capture:<session>`` (``CaptureState``) is written only by its owner, with
compare-and-set: a capture instance that lost ownership finds out at its next write
(``NotOwner``) and stops.

The capture state is ``capture.state``; the job's side is ``capture.host``; the API's swap
helpers are ``katopotato.api.swaps``.
"""

from __future__ import annotations

from .new_side import NewSide


class SessionCapture(NewSide):
    """One capture instance of one session: owner, or new instance of a swap (see the module doc).

    Its parts, one module each, stacked so that each calls only the ones below it:
    ``instance.CaptureBase`` (wiring, the ``Instance`` record, starting the capture, emitting) ←
    ``old_side.OldSide`` ← ``supervision.Supervision`` ← ``runtime.OwnerRuntime`` (the owner's
    loop) ← ``new_side.NewSide`` (``take_over``)."""


__all__ = ["SessionCapture"]
