"""The API's request and response bodies and query parameters, as pydantic models.

These models are both the validation of what comes in and the source of ``/openapi.json``, so
the schema cannot drift from what the handlers accept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from couchpotato.health import NO_AUDIO_TIMEOUT_S
from docsweb import SinkSpec

from ..auth import SCOPES
from ..constants import PRIORITY_MAX

SessionStatus = Literal["starting", "running", "stopping", "completed", "failed", "stopped", "interrupted"]
Scope = Literal["sessions:read", "sessions:write", "search", "jobs:read", "jobs:write", "metrics", "admin"]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]
TranscriptFormat = Literal["json", "txt", "srt", "vtt", "jsonl"]
Cursor = Annotated[str, Field(min_length=1, max_length=512, description="`next_cursor` of the previous page")]
Seconds = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ---------------------------------------------------------------------------------------


class ErrorDetail(_Model):
    code: str = Field(description="stable, machine-readable", examples=["session_not_found"])
    message: str = Field(description="one line for a person")


class ErrorOut(_Model):
    """Every error answer."""

    error: ErrorDetail


# --- sessions -------------------------------------------------------------------------------------


class SessionCreate(_Model):
    """Start transcribing a URL."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="http(s) media (progressive or HLS), rtmp(s) or rtsp URL; local paths are refused",
        examples=["https://example.org/news.mp3"],
    )
    mode: Literal["auto", "direct", "browser"] = Field(
        "auto",
        description="how to capture: auto (direct media where it works, else the browser), "
        "direct (FFmpeg, through yt-dlp for pages) or browser (the page rendered in Chromium)",
    )
    realtime: bool = Field(False, description="read recorded media at 1x, as if live")
    language: str = Field("en", pattern=r"^[a-z]{2,3}$", description="spoken language (ISO 639 code)")
    vocabulary: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=100, description="names and terms the recogniser should prefer"
    )
    title: str | None = Field(None, max_length=200, description="defaults to the URL's file name")
    latency: Literal["balanced", "low", "efficient"] = Field(
        "balanced",
        description="balanced: segments of at most 4 s, each decoded with 8 s of lead-in (final text in "
        "about 3 s); low: at most 3 s, final text a little sooner for more CPU; efficient: cut in pauses, "
        "4-9 s, half the CPU of balanced, final text up to 9 s later",
    )
    keep_audio: bool | None = Field(
        None,
        description="keep captured audio for playback (default: the service's, true unless "
        "COUCHPOTATO_KEEP_AUDIO=false)",
    )
    no_audio_timeout_s: float = Field(
        NO_AUDIO_TIMEOUT_S,
        gt=0,
        le=86_400,
        description="a page (browser capture) that makes no sound within this many seconds of its start ends "
        "the session with `no_audio`; once it has made sound, silence is a health state (`silent`), not an end",
    )
    silence_timeout_s: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="end a page's session with `silence_timeout` after this many seconds of silence following "
        "sound (default: never; a live event may pause as long as it likes)",
    )
    outputs: list[SinkSpec] = Field(
        default_factory=list,
        max_length=20,
        description="transcript sinks: a Google Doc, a webhook, a file; an invalid one is a 422 `invalid_outputs`, "
        "one the service cannot serve (no Google credentials, a refused webhook host) a 400 `sink_refused`",
    )


class SourceOut(_Model):
    url: str
    kind: str = Field(description="how the source was resolved: http, hls, rtmp, rtsp…")
    reason: str = Field(description="why it was resolved that way")


class SessionLinks(_Model):
    self: str
    events: str
    transcript: str
    audio: str | None
    console: str
    outputs: str
    job: str | None = Field(None, description="the session's capture job (GET /v1/jobs/{id})")


SinkHealthOut = Literal["pending", "ok", "retrying", "failing", "done", "stopped"]


class OutputOut(_Model):
    """An output of a session (a transcript sink) and where it stands."""

    id: str
    type: str = Field(description="gdoc, webhook or file")
    target: str = Field(description="the document URL, the webhook URL without credentials, or the blob key")
    status: SinkHealthOut = Field(
        description="pending, ok, retrying (failing for less than retry_for_s), failing, done (the end event "
        "is delivered), stopped"
    )
    cursor: str | None = Field(description="id of the last event delivered (the session's event ids)")
    delivered: int
    last_error: str | None
    failing_since: float | None
    updated_at: float
    spec: dict[str, Any] = Field(description="the output as asked for, secrets masked")


class OutputCreate(RootModel[SinkSpec]):
    """One more output of a session: a gdoc, webhook or file spec."""


class OutputList(_Model):
    outputs: list[OutputOut]


class SessionOut(_Model):
    """A session: what was asked, what was chosen, where it stands."""

    id: str
    title: str
    status: SessionStatus
    health: str = Field(description="unknown, ok, silent, no_audio, dead, stalled or ended")
    silent_s: float | None = Field(
        None, description="while health is silent: how long the source has been quiet (seconds)"
    )
    source: SourceOut
    mode: str
    realtime: bool
    language: str
    vocabulary: list[str]
    latency: str
    keep_audio: bool
    committed_seq: int | None = Field(description="seq of the last committed segment or gap")
    segments: int = Field(description="committed segments")
    gaps: int = Field(description="seqs that could not be transcribed, marked as gaps")
    duration_s: float = Field(description="seconds of audio captured")
    queue_depth: int = Field(description="segments cut but not yet committed")
    error: str | None
    last_event_id: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    job_id: str | None = Field(description="the capture job, when the session runs on the scheduler")
    outputs: list[OutputOut]
    links: SessionLinks


class SessionList(_Model):
    sessions: list[SessionOut]
    next_cursor: str | None


class SessionListQuery(_Model):
    status: SessionStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


class SwapCreate(_Model):
    """A request to swap a session's capture instance (HotPotato)."""

    reason: str = Field("requested through the API", min_length=1, max_length=200, description="recorded in the events")


class SwapStatusOut(_Model):
    """A session's current (or last) swap, the ones before it, and its capture instance's health."""

    session_id: str
    swap: dict[str, Any] | None = Field(description="the current or last swap (phase, trigger, alignment, cut…)")
    history: list[dict[str, Any]] = Field(description="summaries of the earlier swaps, oldest first")
    health: dict[str, Any] | None = Field(description="the capture instance's latest probe and supervisor verdict")
    capture: dict[str, Any] | None = Field(description="where the capture is: epoch, owner, next seq, media time")


class SessionPath(_Model):
    id: str = Field(min_length=1, max_length=64)


class EventsQuery(_Model):
    last_event_id: int | None = Field(
        None, ge=0, le=2**31, description="resume after this event id (same as the Last-Event-ID header)"
    )
    partials: bool = Field(
        False,
        description="also send interim text of the segment being heard: 'partial' events, without an id, "
        "each replaced for good by the 'segment' event of the same seq; never stored",
    )


class TranscriptQuery(_Model):
    format: TranscriptFormat = "json"


class AudioQuery(_Model):
    start: Seconds = 0.0
    end: Seconds | None = Field(None, description="default: start + 30 s; at most 120 s are returned")


class TranscriptOut(_Model):
    """A transcript as JSON: ``events`` are the jsonl lines (session, segments and gaps, end)."""

    session: SessionOut
    text: str
    events: list[dict[str, Any]]


# --- search ---------------------------------------------------------------------------------------


class SearchParams(_Model):
    q: str = Field(
        min_length=1,
        max_length=500,
        description='words (stemmed), "quoted phrases", prefix* terms; all must match',
    )
    session: str | None = Field(None, min_length=1, max_length=64, description="only this session")
    since: float | datetime | None = Field(
        None, description="only segments committed at or after this time (Unix seconds or ISO 8601)"
    )
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None
    person: str | None = Field(None, min_length=1, max_length=200, description="only segments naming this person")
    place: str | None = Field(None, min_length=1, max_length=200, description="only segments naming this place")
    organisation: str | None = Field(
        None, min_length=1, max_length=200, description="only segments naming this organisation"
    )


class SearchHitOut(_Model):
    session: str
    title: str
    seq: int
    start: float = Field(description="media seconds from the session's start")
    end: float
    text: str
    snippet: str = Field(description="HTML-safe text with <mark> around the matches")
    emitted_at: float
    link: str = Field(description="the console, opened at this moment of the session")


class FacetOut(_Model):
    name: str
    count: int = Field(description="matching segments that mention it")


class SearchOut(_Model):
    hits: list[SearchHitOut]
    next_cursor: str | None
    facets: dict[str, list[FacetOut]] = Field(
        default_factory=dict,
        description="people, places and organisations the matching segments mention, most mentioned first "
        "(Elasticsearch; empty with the database's own search)",
    )


# --- jobs and plugins -----------------------------------------------------------------------------

JobStatusOut = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
StreamId = Annotated[str, Field(pattern=r"^(0|[0-9]{1,15}-[0-9]{1,10})$", max_length=30)]


class JobCreate(_Model):
    """Run a plugin job."""

    kind: str = Field(
        min_length=3,
        max_length=100,
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="`plugin.job`, as GET /v1/plugins lists them",
        examples=["core.transcribe_files"],
    )
    params: dict[str, Any] = Field(default_factory=dict, description="checked against the job's params_schema")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200, description="a second POST with the same key returns the first job"
    )
    priority: int | None = Field(None, ge=0, le=PRIORITY_MAX, description="lower runs first (default: the job's)")


class ProgressOut(_Model):
    done: float
    total: float | None
    message: str


class JobOut(_Model):
    """A job: what it runs, where it is, how it went."""

    id: str
    kind: str
    params: dict[str, Any]
    status: JobStatusOut
    priority: int
    tries: int
    max_tries: int
    progress: ProgressOut | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    ready_at: float | None = Field(description="when a deferred or retried job becomes runnable")
    parent_id: str | None
    idempotency_key: str | None
    worker: str | None
    cancel_requested: bool
    dead: bool = Field(description="failed for good: on the dead-letter list until requeued")
    has_result: bool = Field(description="succeeded: GET /v1/jobs/{id}/result has its result (while kept)")


class JobList(_Model):
    jobs: list[JobOut]
    next_cursor: str | None


class JobListQuery(_Model):
    kind: str | None = Field(None, min_length=1, max_length=100, description="only this kind (`plugin.job`)")
    status: JobStatusOut | None = None
    dead: bool = Field(False, description="the dead-letter list (failed for good), most recent first")
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


class JobPath(_Model):
    id: JobId


class JobResultOut(_Model):
    id: str
    result: Any = Field(description="what the job returned (JSON)")


class JobEventsQuery(_Model):
    last_event_id: StreamId | None = Field(None, description="resume after this event id (as Last-Event-ID)")


class PluginJobOut(_Model):
    kind: str
    description: str
    params_schema: dict[str, Any] = Field(description="JSON schema of the job's params")
    max_tries: int
    priority: int
    concurrency: int


class ScheduleOut(_Model):
    name: str
    cron: str
    kind: str
    params: dict[str, Any]


class PluginOut(_Model):
    name: str
    version: str
    description: str
    jobs: list[PluginJobOut]
    schedules: list[ScheduleOut]
    has_routes: bool
    routes: str | None = Field(description="where its HTTP routes are mounted")
    scopes: dict[str, str] = Field(default_factory=dict, description="the scopes it declares: name → what it allows")
    settings_schema: dict[str, Any] | None


class PluginList(_Model):
    plugins: list[PluginOut]


# --- tokens, identity, health ---------------------------------------------------------------------


class TokenCreate(_Model):
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    name: str = Field("", max_length=100)
    expires_in_s: float | None = Field(
        None, ge=60, le=10 * 365 * 86400, description="the token stops working this long after its creation"
    )


class TokenOut(_Model):
    id: str
    name: str
    scopes: list[str]
    created_at: float
    revoked_at: float | None
    expires_at: float | None = None
    kind: Literal["api", "console"] = Field("api", description="an API token, or a user's console sign-in")
    subject: str = Field("", description="the OIDC subject of a console sign-in")
    token: str | None = Field(default=None, description="the secret, only in the answer that created it")


class TokenList(_Model):
    tokens: list[TokenOut]


class TokenPath(_Model):
    id: str = Field(min_length=1, max_length=64)


class WhoAmI(_Model):
    token_id: str
    name: str
    scopes: list[str]


class MeOut(_Model):
    token_id: str
    name: str
    kind: Literal["api", "console", "oidc"] = Field(description="an API token, a console sign-in, or a bearer JWT")
    subject: str = Field(description="the OIDC subject ('' for API tokens)")
    email: str
    scopes: list[str]
    csrf_token: str | None = Field(
        default=None, description="for a console sign-in: send it as X-CSRF-Token with every POST/DELETE"
    )


class UserOut(_Model):
    id: str
    subject: str
    email: str
    name: str
    groups: list[str] = Field(description="the groups their last token named")
    assigned_groups: list[str] = Field(description="groups assigned here (the first-login group)")
    created_at: float
    last_login_at: float | None


class UserList(_Model):
    users: list[UserOut]


class UserPath(_Model):
    id: str = Field(min_length=1, max_length=64)


class UserGroups(_Model):
    assigned_groups: list[str] = Field(
        max_length=50, description="groups of COUCHPOTATO_OIDC_GROUP_SCOPES given to this user here"
    )


class HealthOut(_Model):
    status: Literal["ok", "unavailable"]
    version: str
    database: str
    search: str
    sessions_running: int


__all__ = [
    "AudioQuery",
    "ErrorDetail",
    "ErrorOut",
    "EventsQuery",
    "HealthOut",
    "JobCreate",
    "JobEventsQuery",
    "JobList",
    "JobListQuery",
    "JobOut",
    "JobPath",
    "JobResultOut",
    "OutputCreate",
    "OutputList",
    "OutputOut",
    "PluginJobOut",
    "PluginList",
    "PluginOut",
    "ProgressOut",
    "ScheduleOut",
    "SearchHitOut",
    "SearchOut",
    "SearchParams",
    "SessionCreate",
    "SessionLinks",
    "SessionList",
    "SessionListQuery",
    "SessionOut",
    "SessionPath",
    "SourceOut",
    "SwapCreate",
    "SwapStatusOut",
    "TokenCreate",
    "TokenList",
    "TokenOut",
    "TokenPath",
    "TranscriptFormat",
    "TranscriptOut",
    "TranscriptQuery",
    "WhoAmI",
]
