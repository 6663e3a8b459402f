"""Errors of the orchestrator: scheduler, brokers, blob stores and the plugin host.

    KatoPotatoError
    ├── ConfigError(ValueError)                a bad URL, option or plugin setting
    ├── BrokerError                            the broker failed or answered something unexpected
    │   └── BrokerUnavailable(ConnectionError) the broker cannot be reached
    ├── SerializationError(ValueError)         a record could not be encoded or decoded
    ├── JobError                               about one job
    │   ├── JobNotFound(LookupError)           no job with that id (or it expired)
    │   ├── UnknownKind(LookupError)           no registered plugin declares that job kind
    │   ├── InvalidParams(ValueError)          the parameters do not fit the kind's model
    │   ├── JobStateError                      the job is not in a state that allows the action
    │   ├── ResultNotReady                     the job has not finished
    │   ├── ResultExpired(LookupError)         the job finished but its result's TTL ran out
    │   ├── JobFailed                          the job failed for good (its error is the message)
    │   └── JobCancelled                       the job was cancelled
    ├── BlobError                              the blob store failed
    │   └── BlobNotFound(FileNotFoundError)    no blob under that key
    ├── PluginError                            a plugin cannot be loaded or is malformed
    ├── Retry                                  raised by a job: try again after ``defer_s``
    └── Abort                                  raised by a job: fail now, without retries

Every message is one line meant for a user: it names the cause and, where there is one, the fix.
"""

from __future__ import annotations


class KatoPotatoError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class ConfigError(KatoPotatoError, ValueError):
    """A URL, an option or a plugin setting is invalid."""


class BrokerError(KatoPotatoError):
    """The broker failed or answered something unexpected."""


class BrokerUnavailable(BrokerError, ConnectionError):
    """The broker cannot be reached."""


class SerializationError(KatoPotatoError, ValueError):
    """A record could not be encoded to or decoded from its wire form."""


class JobError(KatoPotatoError):
    """An error about one job."""


class JobNotFound(JobError, LookupError):
    """No job has that id, or its record expired."""


class UnknownKind(JobError, LookupError):
    """No registered plugin declares that job kind."""


class InvalidParams(JobError, ValueError):
    """The parameters do not fit the job kind's parameter model."""


class JobStateError(JobError):
    """The job's status does not allow the action (requeue a running job, …)."""


class ResultNotReady(JobError):
    """The job has not finished yet."""


class ResultExpired(JobError, LookupError):
    """The job finished, but its result was kept for less time than has passed."""


class JobFailed(JobError):
    """The job failed for good; the message is its last error."""


class JobCancelled(JobError):
    """The job was cancelled."""


class BlobError(KatoPotatoError):
    """The blob store failed."""


class BlobNotFound(BlobError, FileNotFoundError):
    """No blob is stored under that key."""


class PluginError(KatoPotatoError):
    """A plugin cannot be loaded, or declares something invalid."""


class Retry(KatoPotatoError):
    """Raised by a job to be tried again after ``defer_s`` seconds (counts as a try)."""

    def __init__(self, defer_s: float = 0.0, reason: str = "") -> None:
        self.defer_s = max(0.0, float(defer_s))
        self.reason = reason
        super().__init__(reason or f"retry requested in {self.defer_s:g} s")


class Abort(KatoPotatoError):
    """Raised by a job to fail now, for good, without the retries its kind allows."""


def one_line(e: BaseException) -> str:
    """An exception as one line: its type, then its message with whitespace collapsed."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


__all__ = [
    "Abort",
    "BlobError",
    "BlobNotFound",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigError",
    "InvalidParams",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "JobStateError",
    "KatoPotatoError",
    "PluginError",
    "ResultExpired",
    "ResultNotReady",
    "Retry",
    "SerializationError",
    "UnknownKind",
    "one_line",
]
