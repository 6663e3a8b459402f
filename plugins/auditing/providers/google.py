"""The Google Workspace side of a run: the Admin SDK Directory API (google-api-python-client, its
discovery document shipped with the package), as an administrator through a service account with
domain-wide delegation. The users are listed once per run (all fields every check needs, 500 a page).

Blocking: the runner calls it in a thread. ``calls`` counts the API requests made."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import CheckFailed

DIRECTORY_SCOPES = ("https://www.googleapis.com/auth/admin.directory.user.readonly",)
USER_FIELDS = ("nextPageToken,users(id,primaryEmail,isAdmin,isDelegatedAdmin,suspended,archived,isEnrolledIn2Sv,"
               "isEnforcedIn2Sv,lastLoginTime,creationTime,orgUnitPath)")  # fmt: skip
PAGE_SIZE = 500
NEVER_LOGGED_IN = "1970-01-01T00:00:00.000Z"  # what the Directory API says for "never"


def load_credentials(path: str, subject: str) -> Any:
    """Service-account credentials from ``path`` (or Application Default Credentials when empty),
    delegated to ``subject`` (an administrator)."""
    from google.oauth2 import service_account

    if path:
        try:
            info = json.loads(Path(path).read_text(encoding="utf-8"))
            creds = service_account.Credentials.from_service_account_info(info, scopes=list(DIRECTORY_SCOPES))  # type: ignore[no-untyped-call]
        except (OSError, ValueError, KeyError) as e:
            raise CheckFailed(f"cannot load Google credentials from {path}: {e}") from e
    else:
        import google.auth

        creds, _ = google.auth.default(scopes=list(DIRECTORY_SCOPES))
    if subject:
        if not hasattr(creds, "with_subject"):
            raise CheckFailed("domain-wide delegation (google_admin_email) needs service-account credentials")
        creds = creds.with_subject(subject)
    return creds


class GoogleApi:
    """Cached, counted reads of one Workspace customer."""

    provider = "google"

    def __init__(
        self, credentials: Any, *, customer: str = "my_customer", endpoint: str = "", account: str = ""
    ) -> None:
        import google_auth_httplib2  # type: ignore[import-untyped]
        import httplib2  # type: ignore[import-untyped]
        from googleapiclient.discovery import build  # type: ignore[import-untyped]

        self.calls: Counter[str] = Counter()
        self.customer = customer
        self.account = account or customer
        http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=30))
        self._http = http
        options = {"api_endpoint": endpoint} if endpoint else None
        self._directory = build("admin", "directory_v1", http=http, static_discovery=True, cache_discovery=False,
                                client_options=options)  # fmt: skip
        self._users: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def users(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._users is None:
                out: list[dict[str, Any]] = []
                token: str | None = None
                while True:
                    req = self._directory.users().list(customer=self.customer, maxResults=PAGE_SIZE, pageToken=token,
                                                       projection="basic", fields=USER_FIELDS)  # fmt: skip
                    page = req.execute(num_retries=3)
                    self.calls["directory.users.list"] += 1
                    out += page.get("users", [])
                    token = page.get("nextPageToken")
                    if not token:
                        break
                self._users = out
            return list(self._users)


__all__ = ["NEVER_LOGGED_IN", "GoogleApi", "load_credentials"]
