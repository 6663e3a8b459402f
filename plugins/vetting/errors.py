"""Errors of the vetting plugin.

```
VettingError
├── SourceError (OSError)         a contributions or watchlist source cannot be read
├── FormatError (ValueError)      a file as a whole is unusable (no header, unmapped required column)
├── DecisionError (ValueError)    a reviewer decision is incomplete
└── MailError (ConnectionError)   the summary e-mail could not be sent
```

Malformed *rows* are not errors: they are reported with their line numbers and skipped.
"""

from __future__ import annotations


class VettingError(Exception):
    """Base of the vetting plugin's errors; the message is one line for people."""


class SourceError(VettingError, OSError):
    """A source (path, http(s) URL, s3:// object) cannot be read."""


class FormatError(VettingError, ValueError):
    """A contributions file or watchlist cannot be used at all (as opposed to a malformed row)."""


class DecisionError(VettingError, ValueError):
    """A reviewer decision lacks its donor, subject or reason."""


class MailError(VettingError, ConnectionError):
    """The summary e-mail could not be handed to the mail server."""


__all__ = ["DecisionError", "FormatError", "MailError", "SourceError", "VettingError"]
