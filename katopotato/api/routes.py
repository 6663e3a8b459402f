"""The API's handlers, and the operations that declare them (see openapi.py).

Handlers only raise on failure (``ApiError`` or an exception ``errors.ERROR_MAP`` maps);
the error middleware in app.py turns that into the JSON error answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from couchpotato import __version__
from couchpotato.errors import SerializationError
from couchpotato.formats import render
from couchpotato.records import Event, event_from_dict
from hotpotato.errors import SwapRefused

from ..auth import KIND_CONSOLE, TokenInfo
from ..drafts import follow_partials
from ..identity import UserInfo
from ..search import SearchQuery, parse
from ..sessions import AudioKeeper, AudioNotKept, BlobAudioKeeper, SessionRecord, SessionSpec
from .authn import SESSION_COOKIE, csrf_token
from .errors import BadRequest, NotFound, Unprocessable, validation_message
from .http import (
    SSE_KEEPALIVE_S,
    SSE_RETRY_MS,
    decode_cursor,
    encode_cursor,
    get_principal,
    get_service,
    json_object,
    json_response,
    parse_body,
    parse_query,
    validate,
)
from .jobs import JOB_OPERATIONS
from .live import LiveItem, with_partials
from .models import (
    AudioQuery,
    EventsQuery,
    FacetOut,
    HealthOut,
    MeOut,
    OutputCreate,
    OutputList,
    OutputOut,
    SearchHitOut,
    SearchOut,
    SearchParams,
    SessionCreate,
    SessionLinks,
    SessionList,
    SessionListQuery,
    SessionOut,
    SessionPath,
    SourceOut,
    SwapCreate,
    SwapStatusOut,
    TokenCreate,
    TokenList,
    TokenOut,
    TokenPath,
    TranscriptOut,
    TranscriptQuery,
    UserGroups,
    UserList,
    UserOut,
    UserPath,
    WhoAmI,
)
from .openapi import ANY_TOKEN, PUBLIC, Answer, HeaderParam, Operation
from .service import Service
from .swaps import request_swap, swap_status

log = logging.getLogger(__name__)
DEFAULT_CLIP_S = 30.0
TRANSCRIPT_MEDIA = {
    "txt": ("text/plain", "txt", "text"),
    "srt": ("application/x-subrip", "srt", "srt"),
    "vtt": ("text/vtt", "vtt", "vtt"),
    "jsonl": ("application/x-ndjson", "jsonl", "jsonl"),
}


# --- helpers ------------------------------------------------------------------------------------


def _outputs(service: Service, raw: Any) -> list[Any]:
    """``outputs`` of a request as sink specs: a 422 ``invalid_outputs`` when they do not fit."""
    try:
        return service.outputs.parse(raw)
    except ValidationError as e:
        raise Unprocessable(f"outputs: {validation_message(e)}", code="invalid_outputs") from e
    except ValueError as e:  # two outputs with one id
        raise Unprocessable(f"outputs: {e}", code="invalid_outputs") from e


def _decode_session_cursor(cursor: str) -> tuple[float, str]:
    raw = decode_cursor(cursor)
    if isinstance(raw, list) and len(raw) == 2:
        created, sid = raw
        if isinstance(sid, str) and not isinstance(created, bool) and isinstance(created, int | float):
            return float(created), sid
    raise BadRequest("the cursor is not one this service handed out", code="invalid_cursor")


def console_link(service: Service, session_id: str, at: float | None = None) -> str:
    link = f"{service.settings.public_url}/#/sessions/{session_id}"
    return link + (f"?t={at:.2f}" if at is not None else "")


def session_out(service: Service, r: SessionRecord, outputs: list[dict[str, Any]] | None = None) -> SessionOut:
    live = service.runner.live(r.id)
    base = f"/v1/sessions/{r.id}"
    return SessionOut(
        id=r.id,
        title=r.title,
        status=r.status,  # type: ignore[arg-type]
        health=(live.health if live and r.status == "running" else r.health),
        silent_s=live.silent_s if live and r.status == "running" else None,
        source=SourceOut(url=r.url, kind=r.source_kind, reason=r.source_reason),
        mode=r.mode,
        realtime=r.realtime,
        language=r.language,
        vocabulary=list(r.vocabulary),
        latency=r.latency,
        keep_audio=r.keep_audio,
        committed_seq=r.committed_seq,
        segments=r.segments,
        gaps=r.gaps,
        duration_s=round(max(r.duration_s, live.duration_s if live else 0.0), 3),
        queue_depth=live.queue_depth if live else 0,
        error=r.error,
        last_event_id=r.last_event_id,
        created_at=r.created_at,
        started_at=r.started_at,
        ended_at=r.ended_at,
        job_id=r.job_id,
        outputs=[OutputOut.model_validate(o) for o in outputs or []],
        links=SessionLinks(
            self=base,
            events=f"{base}/events",
            transcript=f"{base}/transcript",
            audio=f"{base}/audio" if r.keep_audio else None,
            console=console_link(service, r.id),
            outputs=f"{base}/outputs",
            job=f"/v1/jobs/{r.job_id}" if r.job_id else None,
        ),
    )


async def session_view(service: Service, r: SessionRecord) -> SessionOut:
    """The session with its outputs."""
    outputs = await service.outputs.describe([r.id])
    return session_out(service, r, outputs.get(r.id, []))


def _session_id(request: web.Request) -> str:
    return validate(SessionPath, dict(request.match_info)).id


# --- sessions -----------------------------------------------------------------------------------


async def create_session(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    data = await json_object(request)
    raw_outputs = data.pop("outputs", [])
    body = validate(SessionCreate, data)
    outputs = _outputs(service, raw_outputs)
    await service.outputs.check(outputs)  # SinkConfigError: 400 sink_refused, before anything exists
    spec = SessionSpec(
        url=body.url.strip(),
        mode=body.mode,
        realtime=body.realtime,
        language=body.language,
        vocabulary=tuple(v.strip() for v in body.vocabulary if v.strip()),
        latency=body.latency,
        title=(body.title or "").strip(),
        keep_audio=service.settings.keep_audio if body.keep_audio is None else body.keep_audio,
        outputs=service.outputs.storage(outputs),
        no_audio_timeout_s=body.no_audio_timeout_s,
        silence_timeout_s=body.silence_timeout_s,
    )
    record = await service.runner.start(spec, created_by=get_principal(request).token_id)
    if outputs:
        service.outputs.wake()
    out = await session_view(service, record)
    return json_response(out, 201, headers={"Location": f"/v1/sessions/{record.id}"})


async def list_sessions(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    q = parse_query(request, SessionListQuery)
    after = _decode_session_cursor(q.cursor) if q.cursor else None
    records, last = await service.store.list(status=q.status, limit=q.limit, after=after)
    outputs = await service.outputs.describe([r.id for r in records])
    return json_response(
        SessionList(
            sessions=[session_out(service, r, outputs.get(r.id, [])) for r in records],
            next_cursor=encode_cursor(list(last)) if last else None,
        )
    )


async def get_session(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    return json_response(await session_view(service, await service.store.require(_session_id(request))))


async def stop_session(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    await service.store.require(sid)
    stopping = await service.runner.stop(sid)
    record = await service.store.require(sid)
    return json_response(await session_view(service, record), 202 if stopping else 200)


async def swap_session(request: web.Request) -> web.StreamResponse:
    """HotPotato: replace the session's capture instance mid-stream (overlap, align, cut in a pause)."""
    service = get_service(request)
    sid = _session_id(request)
    body = await parse_body(request, SwapCreate) if request.body_exists else SwapCreate.model_validate({})
    record = await service.store.require(sid)
    _swappable(service, record)
    await request_swap(service, sid, body.reason, trigger="api")
    return json_response(SwapStatusOut.model_validate(await swap_status(service, sid)), 202)


async def get_swap(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    await service.store.require(sid)
    return json_response(SwapStatusOut.model_validate(await swap_status(service, sid)))


def _swappable(service: Service, record: SessionRecord) -> None:
    if not record.active:
        raise SwapRefused(f"session {record.id} has ended ({record.status}); there is nothing to swap")


async def add_output(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    (spec,) = _outputs(service, [await json_object(request)])
    await service.store.require(sid)
    await service.outputs.check([spec])
    view = await service.outputs.add(sid, spec)  # DuplicateSink: 409 output_exists
    return json_response(OutputOut.model_validate(view), 201, headers={"Location": f"/v1/sessions/{sid}/outputs"})


async def list_outputs(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    await service.store.require(sid)
    views = (await service.outputs.describe([sid])).get(sid, [])
    return json_response(OutputList(outputs=[OutputOut.model_validate(v) for v in views]))


async def session_events(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    q = parse_query(request, EventsQuery)
    after = q.last_event_id or 0
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not header.isdigit() or len(header) > 10:
            raise BadRequest("Last-Event-ID must be an event id (a non-negative integer)")
        after = max(after, int(header))
    record = await service.store.require(sid)
    if not record.active and after >= record.last_event_id:
        return web.Response(status=204)  # nothing more will come: EventSource stops reconnecting
    resp = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
    await resp.prepare(request)
    metrics = service.metrics
    try:
        await resp.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
        durable = service.events.subscribe(sid, after, idle_s=SSE_KEEPALIVE_S)
        subscription: AsyncGenerator[LiveItem] = durable
        if q.partials and record.active:
            partials = follow_partials(service.broker, sid)
            subscription = with_partials(durable, partials, record.committed_seq)
        async with contextlib.aclosing(subscription):
            async for ev in subscription:
                if ev is None:
                    await resp.write(b": keep-alive\n\n")
                elif isinstance(ev, dict):
                    await resp.write(f"data: {json.dumps(ev, separators=(',', ':'))}\n\n".encode())
                else:
                    await resp.write(f"id: {ev.id}\ndata: {ev.data}\n\n".encode())
                    metrics.event_lag.observe(max(0.0, time.time() - ev.created_at))
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client went away, or the service is stopping
    except Exception:  # the stream has begun: no JSON error can be sent any more
        log.exception("SSE stream of session %s failed", sid)
    return resp


def _events(stored: list[Any]) -> list[Event]:
    out: list[Event] = []
    for ev in stored:
        if ev.type in ("session", "segment", "gap", "end"):
            with contextlib.suppress(SerializationError, ValueError):
                out.append(event_from_dict(json.loads(ev.data)))
    return out


async def transcript(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    fmt = parse_query(request, TranscriptQuery).format
    record = await service.store.require(sid)
    stored = [e for e in await service.events.all(sid) if e.type in ("session", "segment", "gap", "end")]
    if fmt == "json":
        events = _events(stored)
        text = render(events, "text").strip()
        return json_response(
            TranscriptOut(
                session=await session_view(service, record),
                text=text,
                events=[json.loads(e.data) for e in stored],
            )
        )
    media, ext, core_fmt = TRANSCRIPT_MEDIA[fmt]
    if fmt == "jsonl":  # noqa: SIM108 - the branches are of different kinds
        body = "".join(e.data + "\n" for e in stored)
    else:
        body = render(_events(stored), core_fmt)  # type: ignore[arg-type]
    return web.Response(
        text=body,
        content_type=media,
        headers={"Content-Disposition": f'attachment; filename="{sid}.{ext}"'},
    )


async def session_audio(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    sid = _session_id(request)
    q = parse_query(request, AudioQuery)
    record = await service.store.require(sid)
    if not record.keep_audio:
        raise AudioNotKept("this session did not keep its audio")
    end = q.end if q.end is not None else q.start + DEFAULT_CLIP_S
    if end <= q.start:
        raise BadRequest("end must be after start")
    blobs_dir = service.settings.blobs_dir
    if blobs_dir is not None:
        data = await asyncio.to_thread(AudioKeeper.clip, AudioKeeper.path_for(blobs_dir, sid), q.start, end)
    else:  # kept in the blob store (S3), a blob per segment
        data = await BlobAudioKeeper.clip(service.blobs, sid, q.start, end)
    return web.Response(body=data, content_type="audio/wav")


# --- search -------------------------------------------------------------------------------------


def _since(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    if value.tzinfo is None:
        raise BadRequest("since: give a time zone (…Z or +hh:mm) or Unix seconds")
    return value.timestamp()


async def search(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    p = parse_query(request, SearchParams)
    wanted = (("people", p.person), ("places", p.place), ("organisations", p.organisation))
    entities = tuple((kind, name) for kind, name in wanted if name)
    query = SearchQuery(
        parse(p.q), session=p.session, since=_since(p.since), limit=p.limit, cursor=p.cursor, entities=entities
    )
    page = await service.search.search(query)  # SearchUnavailable: 503 search_unavailable
    titles = await service.store.titles([h.session_id for h in page.hits])
    hits = [
        SearchHitOut(
            session=h.session_id,
            title=titles.get(h.session_id, ""),
            seq=h.seq,
            start=round(h.start, 3),
            end=round(h.end, 3),
            text=h.text,
            snippet=h.snippet,
            emitted_at=h.emitted_at,
            link=console_link(service, h.session_id, h.start),
        )
        for h in page.hits
    ]
    facets = {kind: [FacetOut(name=n, count=c) for n, c in values] for kind, values in page.facets.items()}
    return json_response(SearchOut(hits=hits, next_cursor=page.next_cursor, facets=facets))


# --- tokens, identity, health, metrics, schema --------------------------------------------------


async def whoami(request: web.Request) -> web.StreamResponse:
    p = get_principal(request)
    return json_response(WhoAmI(token_id=p.token_id, name=p.name, scopes=sorted(p.scopes)))


async def me(request: web.Request) -> web.StreamResponse:
    p = get_principal(request)
    secret = request.cookies.get(SESSION_COOKIE, "") if p.kind == KIND_CONSOLE else ""
    use_cookie = bool(secret) and "Authorization" not in request.headers
    email = p.email
    identities = get_service(request).identities
    if not email and p.kind == KIND_CONSOLE and identities is not None:
        user = await identities.user(p.subject)
        email = user.email if user is not None else ""
    return json_response(
        MeOut(
            token_id=p.token_id,
            name=p.name,
            kind=p.kind,  # type: ignore[arg-type]
            subject=p.subject,
            email=email,
            scopes=sorted(p.scopes),
            csrf_token=csrf_token(secret) if use_cookie else None,
        )
    )


def _user_out(u: UserInfo) -> UserOut:
    return UserOut(**{**u.__dict__, "groups": list(u.groups), "assigned_groups": list(u.assigned_groups)})


async def list_users(request: web.Request) -> web.StreamResponse:
    identities = get_service(request).identities
    users = await identities.users() if identities is not None else []
    return json_response(UserList(users=[_user_out(u) for u in users]))


async def assign_groups(request: web.Request) -> web.StreamResponse:
    user_id = validate(UserPath, dict(request.match_info)).id
    body = await parse_body(request, UserGroups)
    identities = get_service(request).identities
    user = await identities.assign(user_id, body.assigned_groups) if identities is not None else None
    if user is None:
        raise NotFound(f"no user {user_id!r}", code="user_not_found")
    return json_response(_user_out(user))


async def create_token(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, TokenCreate)
    token, info = await get_service(request).tokens.create(body.scopes, name=body.name, expires_in_s=body.expires_in_s)
    return json_response(_token_out(info, token), 201, headers={"Location": f"/v1/tokens/{info.id}"})


def _token_out(i: TokenInfo, token: str | None = None) -> TokenOut:
    return TokenOut(
        id=i.id,
        name=i.name,
        scopes=list(i.scopes),
        created_at=i.created_at,
        revoked_at=i.revoked_at,
        expires_at=i.expires_at,
        kind=i.kind,  # type: ignore[arg-type]
        subject=i.subject,
        token=token,
    )


async def list_tokens(request: web.Request) -> web.StreamResponse:
    infos = await get_service(request).tokens.list()
    return json_response(TokenList(tokens=[_token_out(i) for i in infos]))


async def revoke_token(request: web.Request) -> web.StreamResponse:
    token_id = validate(TokenPath, dict(request.match_info)).id
    if not await get_service(request).tokens.revoke(token_id):
        raise NotFound(f"no active token {token_id!r}", code="token_not_found")
    return web.Response(status=204)


async def healthz(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    db_ok = await service.ping()
    out = HealthOut(
        status="ok" if db_ok else "unavailable",
        version=__version__,
        database=service.db.dialect if db_ok else "unreachable",
        search=service.search.name,
        sessions_running=len(service.runner.running()),
    )
    return json_response(out, 200 if db_ok else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    service = get_service(request)
    await service.refresh_metrics()
    return web.Response(body=service.metrics.render(), headers={"Content-Type": service.metrics.content_type})


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(get_service(request).openapi_document)


# --- the declarations -----------------------------------------------------------------------------

_STRING: dict[str, Any] = {"type": "string"}
SESSION_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/sessions",
        create_session,
        "createSession",
        "Start transcribing a URL",
        "sessions",
        "sessions:write",
        {
            201: Answer("the session, with the kind of source chosen", SessionOut, headers={"Location": _STRING}),
            422: Answer("the source cannot be captured (not found, not media…), or `outputs` are invalid", None),
            503: Answer("the service is shutting down", None),
        },
        body=SessionCreate,
        description="The source is resolved before the answer: a URL the guard refuses "
        "(loopback, private, metadata addresses unless allowlisted) is a 400 `url_refused`. "
        "`outputs` are checked first: an invalid one is a 422 `invalid_outputs`, one the service "
        "cannot serve a 400 `sink_refused`; nothing is created then.",
    ),
    Operation(
        "GET",
        "/v1/sessions",
        list_sessions,
        "listSessions",
        "List sessions, newest first",
        "sessions",
        "sessions:read",
        {200: Answer("a page of sessions", SessionList)},
        query=SessionListQuery,
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}",
        get_session,
        "getSession",
        "A session: status, health, committed seq, duration, error",
        "sessions",
        "sessions:read",
        {200: Answer("the session", SessionOut)},
        path_params=SessionPath,
    ),
    Operation(
        "DELETE",
        "/v1/sessions/{id}",
        stop_session,
        "stopSession",
        "Stop a session (its transcript is kept)",
        "sessions",
        "sessions:write",
        {
            200: Answer("the session, which had already ended", SessionOut),
            202: Answer("the session, now stopping", SessionOut),
        },
        path_params=SessionPath,
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/events",
        session_events,
        "sessionEvents",
        "Live events (Server-Sent Events)",
        "sessions",
        "sessions:read",
        {
            200: Answer(
                "an event stream: `id:` is the event id, `data:` one JSON line (type session, status, "
                "segment, gap, end); it closes after the end event",
                media={"text/event-stream": _STRING},
            ),
            204: Answer("the session ended and nothing follows the given Last-Event-ID"),
        },
        path_params=SessionPath,
        query=EventsQuery,
        headers=(
            HeaderParam(
                "Last-Event-ID",
                {"type": "string", "pattern": "^[0-9]{1,10}$"},
                "resume after this event id, with no loss and no repeats",
            ),
        ),
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/transcript",
        transcript,
        "sessionTranscript",
        "The transcript so far, as json, txt, srt, vtt or jsonl",
        "sessions",
        "sessions:read",
        {
            200: Answer(
                "the transcript",
                TranscriptOut,
                media={
                    "text/plain": _STRING,
                    "application/x-subrip": _STRING,
                    "text/vtt": _STRING,
                    "application/x-ndjson": _STRING,
                },
            )
        },
        path_params=SessionPath,
        query=TranscriptQuery,
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/swap",
        swap_session,
        "swapSessionCapture",
        "Swap the session's capture instance for a new one, mid-stream (HotPotato)",
        "sessions",
        "sessions:write",
        {
            202: Answer("the swap, requested: follow it here or in the session's events", SwapStatusOut),
            409: Answer("no swap now: the session ended or is still starting, or one is in progress (`swap_refused`)"),
        },
        path_params=SessionPath,
        description="A new capture instance starts on the same source, both capture for an overlap, the new audio "
        "is aligned to the old (media timestamps, or cross-correlation for a page) and the cut-over happens in a "
        "pause: the transcript goes on with the next seq, no audio lost or doubled. The events `swap_started`, "
        "`swap_completed` or `swap_failed` (the old instance then keeps running) appear in the session's events. "
        'The body is optional: `{"reason": "…"}`.',
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/swap",
        get_swap,
        "sessionSwap",
        "The session's current or last capture swap, and its capture instance's health",
        "sessions",
        "sessions:read",
        {200: Answer("the swap status", SwapStatusOut)},
        path_params=SessionPath,
    ),
    Operation(
        "POST",
        "/v1/sessions/{id}/outputs",
        add_output,
        "addSessionOutput",
        "Add an output (transcript sink) to a session, running or finished",
        "sessions",
        "sessions:write",
        {
            201: Answer("the output; it delivers the transcript from its first event", OutputOut),
            409: Answer("the session already has an output with that id (`output_exists`)"),
            422: Answer("the output is invalid (`invalid_outputs`)"),
        },
        path_params=SessionPath,
        body=OutputCreate,
        description="The sink starts from the first event of the session's transcript, so one added to a "
        "running or finished session still gets all of it. Secrets (a webhook's secret, a user token) are "
        "stored and never shown again. A sink the service cannot serve is a 400 `sink_refused`.",
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/outputs",
        list_outputs,
        "listSessionOutputs",
        "A session's outputs and their delivery status",
        "sessions",
        "sessions:read",
        {200: Answer("the outputs", OutputList)},
        path_params=SessionPath,
    ),
    Operation(
        "GET",
        "/v1/sessions/{id}/audio",
        session_audio,
        "sessionAudio",
        "Captured audio of a span, as WAV (when the session keeps audio)",
        "sessions",
        "sessions:read",
        {200: Answer("16 kHz mono WAV", media={"audio/wav": {"type": "string", "format": "binary"}})},
        path_params=SessionPath,
        query=AudioQuery,
    ),
]

OTHER_OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/v1/search",
        search,
        "search",
        "Full-text search over committed segments, newest first",
        "search",
        "search",
        {200: Answer("a page of hits", SearchOut), 503: Answer("the search backend is unreachable")},
        query=SearchParams,
    ),
    Operation(
        "GET",
        "/v1/whoami",
        whoami,
        "whoami",
        "The token's id, name and scopes",
        "auth",
        ANY_TOKEN,
        {200: Answer("who you are", WhoAmI)},
    ),
    Operation(
        "GET",
        "/v1/me",
        me,
        "me",
        "Who you are (an API token, a console sign-in or an OIDC bearer token), your scopes, and the "
        "CSRF token of a console sign-in",
        "auth",
        ANY_TOKEN,
        {200: Answer("who you are", MeOut)},
    ),
    Operation(
        "GET",
        "/v1/users",
        list_users,
        "listUsers",
        "People who signed in with OIDC, their groups and the groups assigned here",
        "auth",
        "admin",
        {200: Answer("the users", UserList)},
    ),
    Operation(
        "PUT",
        "/v1/users/{id}",
        assign_groups,
        "assignUserGroups",
        "Set the groups a user is given here (besides their provider's)",
        "auth",
        "admin",
        {200: Answer("the user", UserOut), 404: Answer("no such user (`user_not_found`)")},
        path_params=UserPath,
        body=UserGroups,
        description="The groups must be ones of COUCHPOTATO_OIDC_GROUP_SCOPES. They count for the user's bearer "
        "JWTs within 10 s, and for their console at their next sign-in.",
    ),
    Operation(
        "GET",
        "/v1/tokens",
        list_tokens,
        "listTokens",
        "List tokens (without secrets)",
        "auth",
        "admin",
        {200: Answer("the tokens", TokenList)},
    ),
    Operation(
        "POST",
        "/v1/tokens",
        create_token,
        "createToken",
        "Create a token; its secret is in this answer only",
        "auth",
        "admin",
        {201: Answer("the new token", TokenOut)},
        body=TokenCreate,
    ),
    Operation(
        "DELETE",
        "/v1/tokens/{id}",
        revoke_token,
        "revokeToken",
        "Revoke a token",
        "auth",
        "admin",
        {204: Answer("revoked")},
        path_params=TokenPath,
    ),
    Operation(
        "GET",
        "/healthz",
        healthz,
        "healthz",
        "Liveness and database reachability",
        "service",
        PUBLIC,
        {200: Answer("healthy", HealthOut), 503: Answer("the database is unreachable", HealthOut)},
    ),
    Operation(
        "GET",
        "/metrics",
        metrics,
        "metrics",
        "Prometheus metrics",
        "service",
        "metrics",
        {200: Answer("Prometheus text format", media={"text/plain": _STRING})},
    ),
    Operation(
        "GET",
        "/openapi.json",
        openapi_json,
        "openapi",
        "This document",
        "service",
        ANY_TOKEN,
        {200: Answer("OpenAPI 3.1", media={"application/json": {"type": "object"}})},
    ),
]


def operations() -> list[Operation]:

    return [*SESSION_OPERATIONS, *JOB_OPERATIONS, *OTHER_OPERATIONS]


__all__ = ["console_link", "operations", "session_out", "session_view"]
