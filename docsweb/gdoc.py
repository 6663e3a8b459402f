"""The Google Docs sink: the transcript, live, in a shared document.

Written with google-api-python-client (Docs v1, Drive v3; the discovery documents ship with it)
over httplib2, authorised by google-auth: a service account from ``GOOGLE_APPLICATION_CREDENTIALS``
(optionally acting as a user of its domain: ``subject``), or a user's OAuth token. The client is
synchronous: every call runs on the sink's own thread (one per sink, so its httplib2 connection is
never shared), never on the event loop.

Layout: a HEADING_1 with the title, an italic line with the source and start time, then one
paragraph per committed segment, ``[hh:mm:ss] text`` (the timestamp links to that moment in the
console when a console URL is configured), gaps and the end as italic lines.

One write (``documents.batchUpdate``) per batch: the runner batches what arrives within
``batch_interval_s`` (or ``batch_max_events``), and every sink writing as the same Google user in
this process shares one budget of ``docs_write_quota_per_min`` writes per minute, taken before the
batch is composed (``ready``), so when many documents share a user each write carries more
segments instead of the API answering 429. 429 and 5xx answers become ``SinkRetry`` with the
``Retry-After`` they carry; the runner backs off.

Appending while people edit: the sink inserts at the end index it read back from the document, and
sends the revision it read as ``writeControl.requiredRevisionId``. If anyone changed the document
since, the API refuses the write (400) and nothing is applied; the sink reads the document again
and writes at the new end. After its own write it knows the new end and revision from the answer,
so it reads the document only at start and after a conflict or an ambiguous failure.

Idempotence: every write also moves a named range ``couchpotato/<session>/<sink>/<event id>`` over
the text it inserted (deleting the previous one in the same atomic batch). On start, and after a
failure whose outcome is unknown, the sink reads the marker back and skips the events the document
already holds, so a crash between a write and the cursor save never doubles a paragraph.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email.utils
import functools
import hashlib
import json
import logging
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

import google.auth.exceptions
import httplib2  # type: ignore[import-untyped]
from google.auth.credentials import Credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from couchpotato.formats import clock
from couchpotato.records import EndEvent, GapEvent, SessionEvent, TranscriptEvent

from .base import BatchPolicy, Item, OrderKey, SinkContext, event_order, later
from .constants import (
    DOCS_BUDGET_MARGIN_S,
    DOCS_BUDGET_PRESSURE,
    DOCS_CONFLICT_ATTEMPTS,
    DOCS_MARKER_PREFIX,
    DOCS_SCOPES,
    DRIVE_FULL_SCOPE,
)
from .errors import ApiFailure, SinkConfigError, SinkRetry
from .settings import DocsWebSettings
from .specs import GDocSpec

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# --- credentials and the API ----------------------------------------------------------------------


def load_credentials(settings: DocsWebSettings, spec: GDocSpec) -> tuple[Credentials, str]:
    """The credentials a sink writes with, and the Google user they count against (its quota).

    Blocking (reads the key file): call it in a thread. Raises SinkConfigError."""
    scopes = [*DOCS_SCOPES, *([DRIVE_FULL_SCOPE] if spec.folder_id else [])]
    if spec.user_token is not None:
        t = spec.user_token
        refresh = t.refresh_token.get_secret_value()
        creds = user_credentials.Credentials(  # type: ignore[no-untyped-call]
            token=t.access_token.get_secret_value() if t.access_token else None,
            refresh_token=refresh,
            token_uri=t.token_uri,
            client_id=t.client_id,
            client_secret=t.client_secret.get_secret_value(),
            scopes=scopes,
        )
        return creds, f"user:{t.client_id}:{hashlib.sha256(refresh.encode()).hexdigest()[:12]}"
    path = settings.google_credentials
    if path is None:
        raise SinkConfigError(
            "a gdoc output needs Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
            "JSON file, or give the output a user_token"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        kind = info.get("type") if isinstance(info, dict) else None
        if kind == "service_account":
            sa = service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
            if spec.subject:
                return sa.with_subject(spec.subject), spec.subject
            return sa, sa.service_account_email
        if kind == "authorized_user":
            user = user_credentials.Credentials.from_authorized_user_info(info, scopes=scopes)  # type: ignore[no-untyped-call]
        else:
            raise ValueError(f"its type is {kind!r}; use a service_account or authorized_user file")
    except (OSError, ValueError) as e:
        raise SinkConfigError(f"cannot load Google credentials from {path}: {e}") from e
    if spec.subject:
        raise SinkConfigError(f"subject (domain-wide delegation) needs service-account credentials; {path} is not")
    return user, f"user:{user.client_id}:{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"


class DocsApi:
    """The Docs and Drive clients of one sink; blocking, to be called on one thread only."""

    def __init__(self, credentials: Credentials, settings: DocsWebSettings) -> None:
        import google_auth_httplib2  # type: ignore[import-untyped]
        from googleapiclient.discovery import build  # type: ignore[import-untyped]

        self.http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=settings.http_timeout_s)
        )
        common: dict[str, Any] = {"http": self.http, "static_discovery": True, "cache_discovery": False}
        self.docs = build("docs", "v1", client_options={"api_endpoint": settings.docs_endpoint}, **common)
        self.drive = build("drive", "v3", client_options={"api_endpoint": settings.drive_endpoint}, **common)

    def create(self, title: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.docs.documents().create(body={"title": title}).execute(num_retries=0))

    def get(self, document_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.docs.documents().get(documentId=document_id).execute(num_retries=0))

    def batch_update(self, document_id: str, requests: list[dict[str, Any]], revision: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"requests": requests}
        if revision is not None:
            body["writeControl"] = {"requiredRevisionId": revision}
        call = self.docs.documents().batchUpdate(documentId=document_id, body=body)
        return cast(dict[str, Any], call.execute(num_retries=0))

    def share(self, document_id: str, email_address: str, role: str, notify: bool) -> None:
        self.drive.permissions().create(
            fileId=document_id,
            body={"type": "user", "role": role, "emailAddress": email_address},
            sendNotificationEmail=notify,
            supportsAllDrives=True,
            fields="id",
        ).execute(num_retries=0)

    def move_to_folder(self, document_id: str, folder_id: str) -> None:
        files = self.drive.files()
        current = files.get(fileId=document_id, fields="parents", supportsAllDrives=True).execute(num_retries=0)
        files.update(
            fileId=document_id,
            addParents=folder_id,
            removeParents=",".join(p for p in current.get("parents", []) if p != folder_id),
            fields="id,parents",
            supportsAllDrives=True,
        ).execute(num_retries=0)

    def close(self) -> None:
        self.http.close()


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (it is a number of seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class GoogleCaller:
    """Runs a sink's blocking Google calls on its own thread and turns failures into exceptions the
    sink understands: ApiFailure (an HTTP error answer) or SinkRetry (no answer, no token)."""

    def __init__(self, name: str) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.requests: collections.Counter[str] = collections.Counter()

    async def call(self, method: str, fn: Callable[..., T], *args: Any) -> T:
        from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

        self.requests[method] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))
        except HttpError as e:
            status = int(e.resp.status)
            self.requests[f"{method} {status}"] += 1
            raise ApiFailure(method, status, _reason(e), retry_after_s(e.resp.get("retry-after"))) from e
        except google.auth.exceptions.RefreshError as e:
            raise SinkRetry(f"Google refused the credentials: {e}") from e
        except google.auth.exceptions.TransportError as e:
            raise SinkRetry(f"cannot reach the Google token endpoint: {e}") from e
        except (httplib2.HttpLib2Error, OSError) as e:
            raise SinkRetry(f"cannot reach Google ({method}): {e or type(e).__name__}") from e

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False)


def _reason(e: Any) -> str:
    reason = getattr(e, "reason", "") or ""
    return str(reason).strip() or f"HTTP {e.resp.status}"


class WriteBudget:
    """At most ``per_min`` writes in any ``window_s`` window, shared by the ``sinks`` writing as one
    Google user. A write counts from when it is allowed until ``window_s`` after it was answered
    (``settle``): Google counts it when it arrives, somewhere in between."""

    def __init__(self, per_min: int, *, window_s: float = 60.0 + DOCS_BUDGET_MARGIN_S) -> None:
        self.per_min = max(1, per_min)
        self.window_s = window_s
        self.sinks = 0
        self._tokens: list[list[float]] = []
        self._lock = asyncio.Lock()

    def used(self) -> int:
        """Writes in the current window."""
        horizon = time.monotonic() - self.window_s
        self._tokens = [t for t in self._tokens if t[0] > horizon]
        return len(self._tokens)

    def fair_interval_s(self) -> float:
        """Seconds between two writes of one sink when all its sinks write as often as they may."""
        return max(1, self.sinks) * self.window_s / self.per_min

    async def acquire(self) -> list[float]:
        """Wait for room in the window; the token to ``settle`` once the write is answered."""
        async with self._lock:
            while True:
                if self.used() < self.per_min:
                    token = [time.monotonic()]
                    self._tokens.append(token)
                    return token
                await asyncio.sleep(min(t[0] for t in self._tokens) + self.window_s - time.monotonic())

    @staticmethod
    def settle(token: list[float]) -> None:
        token[0] = max(token[0], time.monotonic())


_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteBudget]] = weakref.WeakKeyDictionary()


def write_budget(principal: str, per_min: int) -> WriteBudget:
    """This process's write budget for a Google user (one per event loop)."""
    per_loop = _budgets.setdefault(asyncio.get_running_loop(), {})
    budget = per_loop.get(principal)
    if budget is None or budget.per_min != per_min:
        budget = per_loop[principal] = WriteBudget(per_min)
    return budget


# --- layout -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Para:
    """One paragraph to write: its text, named style, whether it is italic, and a link span
    (start, end in UTF-16 units of ``text``, URL)."""

    text: str
    style: str = "NORMAL_TEXT"
    italic: bool = False
    link: tuple[int, int, str] | None = None


def u16(text: str) -> int:
    """Length in UTF-16 code units: the Docs API's unit of indexes."""
    return len(text.encode("utf-16-le")) // 2


def hms(seconds: float) -> str:
    return clock(seconds)[:8]


def console_link(console_url: str, session_id: str, at: float) -> str:
    return f"{console_url}/#/sessions/{session_id}?t={at:.2f}"


def clean(text: str) -> str:
    return _CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " ")).strip()


def layout(items: Sequence[Item], *, title: str, session_id: str, console_url: str = "") -> list[Para]:
    """The paragraphs that show ``items`` (an empty segment shows nothing)."""
    out: list[Para] = []
    for item in items:
        ev = item.event
        if isinstance(ev, SessionEvent):
            started = dt.datetime.fromtimestamp(ev.media_epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            meta = [f"Source: {clean(ev.source)}"] if ev.source else []
            out.append(Para(clean(title) or f"Transcript {session_id}", "HEADING_1"))
            out.append(Para(" · ".join([*meta, f"Started {started}"]), italic=True))
        elif isinstance(ev, TranscriptEvent):
            text = clean(ev.text)
            if not text:
                continue
            stamp = f"[{hms(ev.start)}]"
            link = (0, u16(stamp), console_link(console_url, session_id, ev.start)) if console_url else None
            out.append(Para(f"{stamp} {text}", link=link))
        elif isinstance(ev, GapEvent):
            out.append(
                Para(
                    f"[{hms(ev.start)}] [gap until {hms(ev.end)}: {clean(ev.reason) or 'not transcribed'}]", italic=True
                )
            )
        elif isinstance(ev, EndEvent):
            why = clean(ev.reason) + (f": {clean(ev.error)}" if ev.error else "")
            out.append(Para(f"[end of transcript — {why}]", italic=True))
    return out


@dataclass
class DocState:
    """What the sink knows of the document: where its body ends, whether the last paragraph is
    empty, its revision, and this sink's markers (names, and the latest event id they carry)."""

    end_index: int
    tail_empty: bool
    revision: str | None
    markers: list[str] = field(default_factory=list)
    marked: str | None = None


def read_state(doc: Mapping[str, Any], prefix: str, order: OrderKey = event_order) -> DocState:
    content = doc.get("body", {}).get("content", [])
    if not content:
        raise SinkRetry("the document has no body")
    last = content[-1]
    tail = "".join(e.get("textRun", {}).get("content", "") for e in last.get("paragraph", {}).get("elements", []))
    markers = [name for name in doc.get("namedRanges", {}) if name.startswith(prefix)]
    marked: str | None = None
    for name in markers:
        try:
            marked = later(marked, name[len(prefix) :], order)
        except ValueError:
            continue
    return DocState(int(last["endIndex"]), tail == "\n", doc.get("revisionId"), markers, marked)


def build_requests(paras: Sequence[Para], state: DocState, marker: str) -> tuple[list[dict[str, Any]], int]:
    """The batchUpdate requests that append ``paras`` at the end of the document, reset their styles,
    and move this sink's marker over them; and the length inserted."""
    at = state.end_index - 1
    prefix = "" if state.tail_empty else "\n"  # a person left text in the last paragraph
    text = prefix + "".join(p.text + "\n" for p in paras)
    n = u16(text)
    base = at + u16(prefix)

    def rng(a: int, b: int) -> dict[str, int]:
        return {"startIndex": a, "endIndex": b}

    reqs: list[dict[str, Any]] = [
        {"insertText": {"location": {"index": at}, "text": text}},
        {
            "updateParagraphStyle": {
                "range": rng(base, at + n),
                "paragraphStyle": {"namedStyleType": "NORMAL_TEXT"},
                "fields": "namedStyleType",
            }
        },
        {"updateTextStyle": {"range": rng(base, at + n), "textStyle": {}, "fields": "bold,italic,underline,link"}},
    ]
    pos = base
    for p in paras:
        length = u16(p.text)
        if p.style != "NORMAL_TEXT":
            reqs.append(
                {
                    "updateParagraphStyle": {
                        "range": rng(pos, pos + length + 1),
                        "paragraphStyle": {"namedStyleType": p.style},
                        "fields": "namedStyleType",
                    }
                }
            )
        if p.italic and length:
            reqs.append(
                {
                    "updateTextStyle": {
                        "range": rng(pos, pos + length),
                        "textStyle": {"italic": True},
                        "fields": "italic",
                    }
                }
            )
        if p.link is not None:
            a, b, url = p.link
            reqs.append(
                {
                    "updateTextStyle": {
                        "range": rng(pos + a, pos + b),
                        "textStyle": {"link": {"url": url}},
                        "fields": "link",
                    }
                }
            )
        pos += length + 1
    reqs.extend({"deleteNamedRange": {"name": name}} for name in state.markers)
    reqs.append({"createNamedRange": {"name": marker, "range": rng(base, at + n)}})
    return reqs, n


# --- the sink -----------------------------------------------------------------------------------


def document_url(document_id: str) -> str:
    return f"https://docs.google.com/document/d/{document_id}/edit"


class GDocSink:
    """Appends a session's transcript to a Google Doc (see the module docstring)."""

    type = "gdoc"

    def __init__(self, spec: GDocSpec, *, session_id: str, settings: DocsWebSettings) -> None:
        if not spec.id:
            raise SinkConfigError("the sink spec has no id (use specs.with_ids)")
        self.id = spec.id
        self.spec = spec
        self.session_id = session_id
        self.settings = settings
        self._policy = BatchPolicy(spec.batch_interval_s, spec.batch_max_events, spec.retry_for_s, spec.max_backoff_s)
        self.console_url = (spec.console_url or settings.console_url).rstrip("/")
        self.document_id: str | None = spec.document_id
        self.marker_prefix = f"{DOCS_MARKER_PREFIX}/{session_id}/{self.id}/"
        self.caller = GoogleCaller(f"gdoc-{self.id}")
        self._api: DocsApi | None = None
        self._budget: WriteBudget | None = None
        self._token: list[float] | None = None
        self._doc: DocState | None = None
        self._written: str | None = None
        self._order: OrderKey = event_order
        self._title = ""

    @property
    def policy(self) -> BatchPolicy:
        """The spec's batching while the user's write budget has room; once half of it is used,
        at most this sink's fair share of it (every write then carries more segments)."""
        budget = self._budget
        if budget is None or budget.used() < DOCS_BUDGET_PRESSURE * budget.per_min:
            return self._policy
        return replace(self._policy, min_interval_s=max(self._policy.min_interval_s, budget.fair_interval_s()))

    @property
    def target(self) -> str:
        return document_url(self.document_id) if self.document_id else "a new Google Doc"

    @property
    def requests(self) -> collections.Counter[str]:
        """Google API requests made, by method (and ``"<method> <status>"`` for error answers)."""
        return self.caller.requests

    async def _connect(self) -> DocsApi:
        if self._api is None:
            creds, principal = await asyncio.to_thread(load_credentials, self.settings, self.spec)
            api = await asyncio.get_running_loop().run_in_executor(self.caller.pool, DocsApi, creds, self.settings)
            self._budget = write_budget(principal, self.settings.docs_write_quota_per_min)
            self._budget.sinks += 1
            self._api = api
        return self._api

    async def open(self, ctx: SinkContext) -> str | None:
        self._order = ctx.order
        self._title = self.spec.title or ctx.title or f"Transcript {self.session_id}"
        api = await self._connect()
        data = dict(ctx.stored_data)
        doc_id = data.get("document_id") or self.spec.document_id
        if not doc_id:
            try:
                doc = await self._write("documents.create", api.create, self._title)
            except ApiFailure as e:
                raise e.retry() from e
            doc_id = str(doc["documentId"])
            data.update(document_id=doc_id, created=True, url=document_url(doc_id))
            await ctx.save_data(data)
            log.info("session %s: created Google Doc %s", self.session_id, doc_id)
        self.document_id = str(doc_id)
        if data.get("created") and not data.get("shared"):
            data.update(await self._share(api, self.document_id))
            await ctx.save_data(data)
        self._doc = await self._read()
        return later(ctx.stored_cursor, self._written, self._order)

    async def _share(self, api: DocsApi, doc_id: str) -> dict[str, Any]:
        problems: list[str] = []
        try:
            for address in self.spec.share_with:
                await self.caller.call(
                    "permissions.create", api.share, doc_id, address, self.spec.share_role, self.spec.notify
                )
            if self.spec.folder_id:
                await self.caller.call("files.update", api.move_to_folder, doc_id, self.spec.folder_id)
        except ApiFailure as e:
            if e.status in RETRYABLE:
                raise e.retry() from e
            problems.append(str(e))  # a bad address or folder must not hold the transcript back
            log.warning("session %s: sharing %s: %s", self.session_id, doc_id, e)
        return {"shared": True, "share_error": "; ".join(problems)}

    async def ready(self) -> None:
        """Take a write from the user's budget before the batch is composed (the events that arrive
        while it waits join the batch)."""
        if self._budget is not None and self._token is None:
            self._token = await self._budget.acquire()

    async def _write(self, method: str, fn: Callable[..., T], *args: Any) -> T:
        """A write request, within the user's budget."""
        token, self._token = self._token, None
        if token is None:
            assert self._budget is not None
            token = await self._budget.acquire()
        try:
            return await self.caller.call(method, fn, *args)
        finally:
            WriteBudget.settle(token)

    async def _read(self) -> DocState:
        api = await self._connect()
        assert self.document_id is not None
        try:
            doc = await self.caller.call("documents.get", api.get, self.document_id)
        except ApiFailure as e:
            if e.status in (403, 404):
                raise SinkRetry(
                    f"{e}: the document {self.document_id} does not exist or is not shared with the sink's Google user"
                ) from e
            raise e.retry() from e
        state = read_state(doc, self.marker_prefix, self._order)
        self._written = later(self._written, state.marked, self._order)
        return state

    async def deliver(self, batch: Sequence[Item]) -> None:
        api = await self._connect()
        assert self.document_id is not None
        refused = ""
        for _attempt in range(DOCS_CONFLICT_ATTEMPTS):
            if self._doc is None:
                self._doc = await self._read()
            written = self._written
            todo = [i for i in batch if written is None or self._order(i.event_id) > self._order(written)]
            if not todo:
                return  # the document holds them already
            paras = layout(todo, title=self._title, session_id=self.session_id, console_url=self.console_url)
            if not paras:
                self._written = todo[-1].event_id
                return
            marker = self.marker_prefix + todo[-1].event_id
            requests, inserted = build_requests(paras, self._doc, marker)
            try:
                answer = await self._write(
                    "documents.batchUpdate", api.batch_update, self.document_id, requests, self._doc.revision
                )
            except ApiFailure as e:
                if e.status == 429:
                    raise e.retry() from e  # refused, not applied: what we know of the document holds
                self._doc = None  # changed under us (400), or unknown whether applied (5xx): read it again
                if e.status == 400:
                    refused = str(e)
                    continue
                raise e.retry() from e
            except SinkRetry:
                self._doc = None
                raise
            revision = answer.get("writeControl", {}).get("requiredRevisionId")
            self._doc = DocState(self._doc.end_index + inserted, True, revision, [marker], todo[-1].event_id)
            self._written = todo[-1].event_id
            return
        raise SinkRetry(f"{DOCS_CONFLICT_ATTEMPTS} writes in a row were refused, the last with: {refused}")

    async def close(self) -> None:
        if self._budget is not None:
            self._budget.sinks -= 1
            self._budget = None
        api, self._api = self._api, None
        if api is not None:
            self.caller.pool.submit(api.close)  # after a request in flight, without waiting for it
        self.caller.shutdown()


__all__ = [
    "ApiFailure",
    "DocState",
    "DocsApi",
    "GDocSink",
    "GoogleCaller",
    "Para",
    "WriteBudget",
    "build_requests",
    "document_url",
    "layout",
    "load_credentials",
    "read_state",
    "retry_after_s",
    "u16",
    "write_budget",
]
