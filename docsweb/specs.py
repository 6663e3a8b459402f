"""What a client asks for in ``outputs``: one ``SinkSpec`` per sink, told apart by ``type``.

``POST /v1/sessions {…, "outputs": [{"type": "gdoc", …}, {"type": "webhook", …}, {"type": "file", …}]}``
validates each item against the models below (a pydantic discriminated union on ``type``), so a
bad output is refused when the session is created, not when the first segment arrives. Every spec
gets a stable ``id`` (given, or derived from its content by ``with_ids``): the sink's cursor is
stored under it, so a restarted service resumes the same sink where it stopped.

Secrets (a webhook's signing secret, an OAuth user token) are ``SecretStr``: ``public_dict`` shows
a spec without them; ``storage_dict`` keeps them, for the service's own database only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator

from .constants import (
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_RETRY_FOR_S,
    DOCS_BATCH_INTERVAL_S,
    DOCS_BATCH_MAX_EVENTS,
    FILE_WRITE_INTERVAL_S,
    WEBHOOK_MIN_SECRET_CHARS,
    WEBHOOK_TIMEOUT_S,
)
from .errors import DuplicateSink

SINK_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
GOOGLE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
EventType = Literal["session", "segment", "gap", "end"]
EVENT_TYPES: tuple[EventType, ...] = ("session", "segment", "gap", "end")


def _http_url(v: str | None, what: str) -> str | None:
    if v is None:
        return v
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL with a host, not {v!r}")
    return v


class _SpecBase(BaseModel):
    """Fields every sink has.

    Attributes:
        id: stable name of the sink within its session (derived from the spec when omitted).
        retry_for_s: failures this long in a row mark the sink failing; it keeps retrying
            and catches up when the destination is back.
        max_backoff_s: the longest wait between two retries.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, pattern=SINK_ID_PATTERN)
    retry_for_s: float = Field(DEFAULT_RETRY_FOR_S, gt=0, le=7 * 86_400)
    max_backoff_s: float = Field(DEFAULT_MAX_BACKOFF_S, gt=0, le=3_600)


class GoogleUserToken(BaseModel):
    """An OAuth user token (the fields of an ``authorized_user`` credentials file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr
    token_uri: str = "https://oauth2.googleapis.com/token"
    access_token: SecretStr | None = None

    @field_validator("token_uri")
    @classmethod
    def _token_uri(cls, v: str) -> str:
        return _http_url(v, "token_uri") or v


class GDocSpec(_SpecBase):
    """A Google Doc: a new one (titled after the session, shared with ``share_with`` and/or put into
    ``folder_id``), or appended to the existing ``document_id``.

    Attributes:
        document_id: append to this document (shared with the service account) instead of creating one.
        title: title of a new document and of the heading (default: the session's title).
        share_with: e-mail addresses given ``share_role`` on a new document.
        share_role: reader, commenter or writer.
        notify: e-mail the people it is shared with.
        folder_id: put a new document into this Drive folder (shared with the service account).
        subject: with service-account credentials, act as this user (domain-wide delegation).
        user_token: write as a user with this OAuth token instead of the service account.
        console_url: base URL of the console; each timestamp then links to its moment (default:
            the service's public URL).
        batch_interval_s: at most one write per this many seconds (the API allows 60 per minute per
            user, shared by every document written as that user).
        batch_max_events: at most this many events per write.
    """

    type: Literal["gdoc"]
    document_id: str | None = Field(None, pattern=GOOGLE_ID_PATTERN)
    title: str | None = Field(None, min_length=1, max_length=200)
    share_with: tuple[Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=254)], ...] = Field((), max_length=50)
    share_role: Literal["reader", "commenter", "writer"] = "writer"
    notify: bool = False
    folder_id: str | None = Field(None, pattern=GOOGLE_ID_PATTERN)
    subject: str | None = Field(None, pattern=EMAIL_PATTERN)
    user_token: GoogleUserToken | None = None
    console_url: str | None = None
    batch_interval_s: float = Field(DOCS_BATCH_INTERVAL_S, ge=1.0, le=600)
    batch_max_events: int = Field(DOCS_BATCH_MAX_EVENTS, ge=1, le=500)

    @field_validator("console_url")
    @classmethod
    def _console(cls, v: str | None) -> str | None:
        return _http_url(v, "console_url")

    @model_validator(mode="after")
    def _consistent(self) -> GDocSpec:
        if self.document_id and self.folder_id:
            raise ValueError("folder_id applies to a new document; it cannot be used with document_id")
        if self.subject and self.user_token:
            raise ValueError("subject (domain-wide delegation) needs the service account, not a user_token")
        return self


class WebhookSpec(_SpecBase):
    """An HTTP endpoint that receives the events as signed JSON POSTs.

    Attributes:
        url: where to POST (the URL guard applies: no private addresses unless allowlisted).
        secret: the HMAC-SHA256 key of ``X-CouchPotato-Signature``.
        events: the event types sent.
        batch_max_events: 1 posts each event alone; more posts ``{"events": [...]}`` batches.
        batch_interval_s: at most one POST per this many seconds.
        timeout_s: of one POST.
    """

    type: Literal["webhook"]
    url: str
    secret: SecretStr
    events: tuple[EventType, ...] = EVENT_TYPES
    batch_max_events: int = Field(1, ge=1, le=500)
    batch_interval_s: float = Field(0.0, ge=0, le=600)
    timeout_s: float = Field(WEBHOOK_TIMEOUT_S, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v, "url") or v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < WEBHOOK_MIN_SECRET_CHARS:
            raise ValueError(f"secret must have at least {WEBHOOK_MIN_SECRET_CHARS} characters")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if not v:
            raise ValueError("events must name at least one event type")
        return tuple(dict.fromkeys(v))


class FileSpec(_SpecBase):
    """A transcript file in the blob store, rewritten as events arrive.

    Attributes:
        format: text, jsonl, srt or vtt.
        key: blob key; ``{session_id}``, ``{sink_id}`` and ``{ext}`` are filled in (default
            ``transcripts/{session_id}/{sink_id}.{ext}``).
        interval_s: at most one rewrite per this many seconds.
    """

    type: Literal["file"]
    format: Literal["text", "jsonl", "srt", "vtt"]
    key: str | None = Field(None, min_length=1, max_length=512)
    interval_s: float = Field(FILE_WRITE_INTERVAL_S, ge=0, le=600)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            probe = v.format(session_id="s", sink_id="k", ext="txt")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"key may use {{session_id}}, {{sink_id}} and {{ext}} only: {e}") from None
        parts = probe.split("/")
        if probe.startswith("/") or "\\" in probe or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"key must be a relative path like transcripts/{{session_id}}.srt, not {v!r}")
        return v


SinkSpec = Annotated[GDocSpec | WebhookSpec | FileSpec, Field(discriminator="type")]
OUTPUTS: TypeAdapter[list[SinkSpec]] = TypeAdapter(list[SinkSpec])


def parse_outputs(raw: Any) -> list[SinkSpec]:
    """Validate the ``outputs`` of a request (raises pydantic's ValidationError) and give every
    sink its id (raises DuplicateSink when two are the same)."""
    return with_ids(OUTPUTS.validate_python(raw))


def derived_id(spec: SinkSpec) -> str:
    """``<type>-<8 hex>`` from the spec's content (its secrets masked)."""
    body = json.dumps(spec.model_dump(mode="json", exclude={"id"}), sort_keys=True, separators=(",", ":"))
    return f"{spec.type}-{hashlib.sha256(body.encode()).hexdigest()[:8]}"


def with_ids(specs: Iterable[SinkSpec], existing: Sequence[str] = ()) -> list[SinkSpec]:
    """The specs with an id each, unique among themselves and ``existing`` (raises DuplicateSink)."""
    seen = set(existing)
    out: list[SinkSpec] = []
    for spec in specs:
        sink_id = spec.id or derived_id(spec)
        if sink_id in seen:
            raise DuplicateSink(f"the session already has an output with id {sink_id!r}")
        seen.add(sink_id)
        out.append(spec if spec.id else spec.model_copy(update={"id": sink_id}))
    return out


def public_dict(spec: SinkSpec) -> dict[str, Any]:
    """The spec as the API shows it: secrets masked."""
    return spec.model_dump(mode="json", exclude_none=True)


def storage_dict(spec: SinkSpec) -> dict[str, Any]:
    """The spec with its secrets, to re-create the sink after a restart (keep it out of responses)."""

    def reveal(v: Any) -> Any:
        if isinstance(v, SecretStr):
            return v.get_secret_value()
        if isinstance(v, dict):
            return {k: reveal(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [reveal(x) for x in v]
        return v

    return {k: reveal(v) for k, v in spec.model_dump(mode="python", exclude_none=True).items()}


__all__ = [
    "EVENT_TYPES",
    "OUTPUTS",
    "FileSpec",
    "GDocSpec",
    "GoogleUserToken",
    "SinkSpec",
    "WebhookSpec",
    "derived_id",
    "parse_outputs",
    "public_dict",
    "storage_dict",
    "with_ids",
]
