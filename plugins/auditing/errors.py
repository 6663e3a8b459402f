"""Errors of the auditing plugin.

```
AuditError
├── MutelistError (ValueError)      the mute list cannot be read or is invalid (fails the run)
├── CheckRegistryError (ValueError) a check is badly declared, or two checks share an id
├── CheckFailed                     a check could not run (no permission, API error): an ERROR finding
└── NotifyError (ConnectionError)   a notification (Slack, PagerDuty, e-mail, Pushgateway) was not delivered
```
"""

from __future__ import annotations


class AuditError(Exception):
    """Base of the auditing plugin's errors; the message is one line for people."""


class MutelistError(AuditError, ValueError):
    """The mute list is missing, not YAML, or has an invalid entry: the run fails loudly."""


class CheckRegistryError(AuditError, ValueError):
    """A check is badly declared (metadata, id) or two checks claim the same id."""


class CheckFailed(AuditError):
    """A check could not evaluate (denied, API error); it becomes an ERROR finding with this reason."""


class NotifyError(AuditError, ConnectionError):
    """A notification channel did not accept the message."""


__all__ = ["AuditError", "CheckFailed", "CheckRegistryError", "MutelistError", "NotifyError"]
