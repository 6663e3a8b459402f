"""Errors of the transcript sinks.

    DocsWebError
    ├── SinkConfigError(ValueError)     a sink spec or setting cannot work (no credentials, refused URL)
    ├── DuplicateSink(ValueError)       a session already has a sink with that id
    ├── CursorStoreError                the cursor store failed
    ├── ApiFailure                      a Google API answered an HTTP error (the gdoc sink turns it
    │                                   into SinkRetry, or into the sink's recorded problems)
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


class ApiFailure(DocsWebError):
    """An HTTP error answer of a Google API: its method, status, reason and ``Retry-After``."""

    def __init__(self, method: str, status: int, reason: str, retry_after_s: float | None) -> None:
        super().__init__(f"Google answered {status} to {method}: {reason}")
        self.method, self.status, self.reason, self.retry_after_s = method, status, reason, retry_after_s

    def retry(self) -> SinkRetry:
        """The same failure as a retry after the delay Google asked for."""
        return SinkRetry(str(self), defer_s=self.retry_after_s)


class SinkRetry(DocsWebError):
    """A delivery failed for now (429, 5xx, a refused connection…): the runner tries the batch again.

    ``defer_s`` is the delay the destination asked for (``Retry-After``), or None to let the runner
    back off exponentially.
    """

    def __init__(self, message: str, *, defer_s: float | None = None) -> None:
        super().__init__(message)
        self.defer_s = defer_s


__all__ = ["ApiFailure", "CursorStoreError", "DocsWebError", "DuplicateSink", "SinkConfigError", "SinkRetry"]
