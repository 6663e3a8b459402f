"""Errors of the transcript sinks.

    DocsWebError
    ├── SinkConfigError(ValueError)     a sink spec or setting cannot work (no credentials, refused URL)
    ├── DuplicateSink(ValueError)       a session already has a sink with that id
    ├── CursorStoreError                the cursor store failed
    └── SinkRetry                       a delivery failed for now: try again after ``defer_s``

Every message is one line meant for a user: it names the cause and, where there is one, the fix.
"""

from __future__ import annotations


class DocsWebError(Exception):
    """Base of every error the sinks raise on purpose."""


class SinkConfigError(DocsWebError, ValueError):
    """A sink spec or a setting cannot work: missing credentials, a refused URL, a bad key."""


class DuplicateSink(DocsWebError, ValueError):
    """The session already has a sink with that id."""


class CursorStoreError(DocsWebError):
    """The cursor store could not read or write a sink's state."""


class SinkRetry(DocsWebError):
    """A delivery failed for now (429, 5xx, a refused connection…): the runner tries the batch again.

    ``defer_s`` is the delay the destination asked for (``Retry-After``), or None to let the runner
    back off exponentially.
    """

    def __init__(self, message: str, *, defer_s: float | None = None) -> None:
        super().__init__(message)
        self.defer_s = defer_s


__all__ = ["CursorStoreError", "DocsWebError", "DuplicateSink", "SinkConfigError", "SinkRetry"]
