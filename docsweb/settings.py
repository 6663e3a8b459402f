"""Deployment settings of the sinks, read once at the edge.

``DocsWebSettings.from_env(os.environ)`` is what the service's settings module calls; everything
below takes a ``DocsWebSettings``.

| field              | environment variable               | default                                  |
|--------------------|------------------------------------|------------------------------------------|
| google_credentials | GOOGLE_APPLICATION_CREDENTIALS     | none: gdoc outputs need a ``user_token`` |
| docs_endpoint      | COUCHPOTATO_GOOGLE_DOCS_ENDPOINT   | ``https://docs.googleapis.com/``         |
| drive_endpoint     | COUCHPOTATO_GOOGLE_DRIVE_ENDPOINT  | ``https://www.googleapis.com/drive/v3/`` |
| console_url        | COUCHPOTATO_PUBLIC_URL             | none: timestamps are not linked          |

The OAuth token endpoint is not a setting: it is the ``token_uri`` of the credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .constants import DOCS_ENDPOINT, DOCS_HTTP_TIMEOUT_S, DOCS_WRITE_QUOTA_PER_MIN, DRIVE_ENDPOINT


@dataclass(frozen=True)
class DocsWebSettings:
    """Where the Google APIs are and who the sinks are there.

    Attributes:
        google_credentials: a service-account (or ``authorized_user``) JSON file.
        docs_endpoint: base URL of the Docs v1 API.
        drive_endpoint: base URL of the Drive v3 API (with its ``drive/v3/`` path).
        console_url: base URL of the web console, for links to a session's moments.
        docs_write_quota_per_min: write requests per minute per Google user this process allows
            itself, shared by all its documents.
        http_timeout_s: of one Google API request.
    """

    google_credentials: Path | None = None
    docs_endpoint: str = DOCS_ENDPOINT
    drive_endpoint: str = DRIVE_ENDPOINT
    console_url: str = ""
    docs_write_quota_per_min: int = DOCS_WRITE_QUOTA_PER_MIN
    http_timeout_s: float = DOCS_HTTP_TIMEOUT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DocsWebSettings:
        creds = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
        return cls(
            google_credentials=Path(creds).expanduser() if creds else None,
            docs_endpoint=env.get("COUCHPOTATO_GOOGLE_DOCS_ENDPOINT", "").strip() or DOCS_ENDPOINT,
            drive_endpoint=env.get("COUCHPOTATO_GOOGLE_DRIVE_ENDPOINT", "").strip() or DRIVE_ENDPOINT,
            console_url=env.get("COUCHPOTATO_PUBLIC_URL", "").strip().rstrip("/"),
        )


__all__ = ["DocsWebSettings"]
