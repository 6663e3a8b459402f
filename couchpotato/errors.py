"""Errors of the capture and transcription core.

    CouchPotatoError
    ├── ConfigError(ValueError)              bad option, settings or corrections file (katopotato's
    │                                        ConfigError is a subclass: one concept, one ``except``)
    ├── UsageError                           bad command-line usage of ``couchpotato``
    ├── SourceError                          the source cannot be captured
    │   ├── UrlRefused(PermissionError)      the URL guard refused an address
    │   ├── SourceNotFound(FileNotFoundError) 404, missing file
    │   ├── SourceUnreachable(ConnectionError) DNS failure, refused connection, TLS error
    │   ├── NotMedia                         an HTML page or text where media was expected
    │   ├── Unresolved                       yt-dlp found no media on a page (resolve_source turns it
    │   │                                    into NotMedia or a browser capture)
    │   ├── NoAudioTrack                     media without an audio stream
    │   └── SourceStalled(TimeoutError)      no audio for longer than the stall timeout
    ├── AsrError                             the ASR engine failed on a segment or cannot load
    └── SerializationError(ValueError)       a record could not be encoded or decoded

Every message is one line meant for a user: it names the cause and, where there is one, the fix.
"""

from __future__ import annotations


class CouchPotatoError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigError(CouchPotatoError, ValueError):
    """An option, a setting or a corrections file is invalid."""


class UsageError(CouchPotatoError):
    """Bad command-line usage (an unknown flag, a value out of range, flags that do not go together)."""


class SourceError(CouchPotatoError):
    """The source cannot be captured."""


class UrlRefused(SourceError, PermissionError):
    """The URL guard refused an address (private, loopback, link-local, metadata…)."""


class SourceNotFound(SourceError, FileNotFoundError):
    """The server answered 404, or the local file does not exist."""


class SourceUnreachable(SourceError, ConnectionError):
    """The host could not be resolved or connected to."""


class NotMedia(SourceError):
    """The source is an HTML page or text, not audio or video."""


class Unresolved(SourceError):
    """yt-dlp found no media on the page; the message says why, in one line."""


class NoAudioTrack(SourceError):
    """The media has no audio stream to transcribe."""


class SourceStalled(SourceError, TimeoutError):
    """The source produced no audio for longer than the stall timeout."""


class AsrError(CouchPotatoError):
    """The ASR engine failed on a segment, or its model cannot be loaded."""


class SerializationError(CouchPotatoError, ValueError):
    """A record could not be encoded to or decoded from JSON."""


__all__ = [
    "AsrError",
    "ConfigError",
    "CouchPotatoError",
    "NoAudioTrack",
    "NotMedia",
    "SerializationError",
    "SourceError",
    "SourceNotFound",
    "SourceStalled",
    "SourceUnreachable",
    "Unresolved",
    "UrlRefused",
    "UsageError",
]
