"""Errors of the orchestrator: scheduler, brokers, blob stores, the plugin host, sessions, search,
auth, the capture runtime and the CLI. The API maps each to an HTTP status and a stable code in one
table (``katopotato.api.errors``).

    KatoPotatoError
    ├── ConfigError(couchpotato.errors.ConfigError)
    │                                          a bad URL, option or plugin setting
    ├── UsageError(couchpotato.errors.UsageError)
    │                                          bad command-line usage
    ├── BrokerError                            the broker failed or answered something unexpected
    │   └── BrokerUnavailable(ConnectionError) the broker cannot be reached
    ├── SerializationError(couchpotato.errors.SerializationError)
    │                                          a record could not be encoded or decoded
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
    ├── SessionError                           a session cannot be started, or does not exist
    │   ├── SessionNotFound(LookupError)       no session has that id
    │   ├── UnsupportedOption(ValueError)      an option this service cannot honour
    │   └── AudioNotKept(LookupError)          the session did not keep its audio (for that span)
    ├── SearchError                            a search that cannot be run
    │   ├── InvalidQuery(ValueError)           the query is empty, too long or unsayable
    │   ├── InvalidCursor(ValueError)          a cursor this backend did not hand out
    │   └── SearchUnavailable(ConnectionError) the search server (Elasticsearch) failed or is unreachable
    ├── InvalidScope(ValueError)               a token scope that does not exist
    ├── AuthError                              a credential is refused (its ``code`` is the API's)
    │   ├── TokenRejected                      401: expired, wrong audience/issuer, bad signature…
    │   ├── NotPermitted(PermissionError)      403: a valid identity this service maps to no role
    │   └── ProviderUnavailable(ConnectionError)  the OIDC provider's discovery or keys cannot be read
    ├── NotOwner                               a capture instance lost its session to another
    ├── Retry                                  raised by a job: try again after ``defer_s``
    └── Abort                                  raised by a job: fail now, without retries

Every message is one line meant for a user: it names the cause and, where there is one, the fix.

A concept the core already names has one class, the core's, which katopotato's subclasses (so
``except KatoPotatoError`` and ``except couchpotato.errors.ConfigError`` both catch it):
``ConfigError``, ``UsageError`` and ``SerializationError``. A ``ConfigError`` means the same thing
wherever it is raised (an option, a setting or a file is invalid); whether it is the client's
doing is decided where input enters: the API validates requests into ``InvalidParams``,
``UnsupportedOption``… (4xx), so a ``ConfigError`` that reaches a handler is the service's own
misconfiguration, a 500 (``katopotato.api.errors``).
"""

from __future__ import annotations

from couchpotato.errors import ConfigError as CoreConfigError
from couchpotato.errors import SerializationError as CoreSerializationError
from couchpotato.errors import UsageError as CoreUsageError


class KatoPotatoError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class ConfigError(KatoPotatoError, CoreConfigError):
    """A URL, an option or a plugin setting is invalid (a ``ValueError``, and the core's
    ``ConfigError``)."""


class BrokerError(KatoPotatoError):
    """The broker failed or answered something unexpected."""


class BrokerUnavailable(BrokerError, ConnectionError):
    """The broker cannot be reached."""


class UsageError(KatoPotatoError, CoreUsageError):
    """Bad command-line usage (the core's ``UsageError`` too)."""


class SerializationError(KatoPotatoError, CoreSerializationError):
    """A record could not be encoded to or decoded from its wire form (a ``ValueError``, and the
    core's ``SerializationError``, so one ``except`` catches every package's)."""


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


class SessionError(KatoPotatoError):
    """A session cannot be started, or does not exist."""


class SessionNotFound(SessionError, LookupError):
    """No session has that id."""


class UnsupportedOption(SessionError, ValueError):
    """An option this service cannot honour (a language the model does not know…)."""


class AudioNotKept(SessionError, LookupError):
    """The session did not keep its audio, or not for that span."""


class SearchError(KatoPotatoError):
    """A search that cannot be run as asked."""


class InvalidQuery(SearchError, ValueError):
    """The query is empty, too long, or asks for something the language cannot say."""


class InvalidCursor(SearchError, ValueError):
    """A cursor that this backend did not hand out."""


class SearchUnavailable(SearchError, ConnectionError):
    """The search server (Elasticsearch) answered an error, or cannot be reached."""


class InvalidScope(KatoPotatoError, ValueError):
    """A scope that does not exist was asked for."""


class AuthError(KatoPotatoError):
    """A credential is refused; ``code`` is the stable code of the API's answer."""

    code = "unauthorized"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class TokenRejected(AuthError):
    """A bearer token (an OIDC JWT) is not valid: expired, not yet valid, for another audience or
    issuer, badly signed, signed by an unknown key, or malformed."""

    code = "invalid_token"


class NotPermitted(AuthError, PermissionError):
    """The identity is valid, but this service maps it to no role (or its domain is not allowed)."""

    code = "no_role"


class ProviderUnavailable(AuthError, ConnectionError):
    """The OIDC provider's discovery document or keys cannot be read."""

    code = "oidc_unavailable"


class NotOwner(KatoPotatoError):
    """This capture instance no longer owns the session (another one took over)."""


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
    "AudioNotKept",
    "AuthError",
    "BlobError",
    "BlobNotFound",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigError",
    "InvalidCursor",
    "InvalidParams",
    "InvalidQuery",
    "InvalidScope",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "JobStateError",
    "KatoPotatoError",
    "NotOwner",
    "NotPermitted",
    "PluginError",
    "ProviderUnavailable",
    "ResultExpired",
    "ResultNotReady",
    "Retry",
    "SearchError",
    "SearchUnavailable",
    "SerializationError",
    "SessionError",
    "SessionNotFound",
    "TokenRejected",
    "UnknownKind",
    "UnsupportedOption",
    "UsageError",
    "one_line",
]
