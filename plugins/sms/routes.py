"""The HTTP routes under ``/v1/plugins/sms/`` (docs/sms.md lists them with their answers).

Routes with credentials (an API token, an OIDC bearer JWT or the console's sign-in): the host
checks the plugin's scope, ``sms:text`` (``sms:admin`` to create a campaign); the caller's id is the
texter's identity, and the campaign role decides the rest (owner > admin > supervolunteer > texter;
a caller with the service's ``admin`` scope may do everything). The two Twilio
webhooks and the console page are public routes: the webhooks are authenticated by their
X-Twilio-Signature. Every error is ``{"error": {"code", "message"}}`` with a stable code.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from katopotato.plugin import route_context

from . import store, texting
from .constants import DEFAULT_BATCH_SIZE, DEFAULT_END_HOUR, DEFAULT_START_HOUR, INBOUND_PATH, STATUS_PATH
from .contacts import parse_csv
from .errors import NotAllowed, SendRefused, SmsError
from .gateway import TwilioGateway
from .optout import KeywordRules
from .phones import to_e164
from .plugin import SCOPE_ADMIN, SCOPE_TEXT, plugin
from .render import check_script, render
from .settings import SmsSettings
from .signature import signed_url, verify
from .zones import within_texting_hours

log = logging.getLogger("plugins.sms")
WEB_DIR = Path(__file__).with_name("web")
ROLES = {"texter": 0, "supervolunteer": 1, "admin": 2, "owner": 3}
MAX_ID = 2**62  # ids fit SQLite's and PostgreSQL's 64-bit integers
MAX_CSV_BYTES = 60 * 1024  # under the service's request limit; the console uploads bigger files in parts
LOG_FIELDS = ("action", "source", "detail", "actor_id", "actor_name", "at")
NEXT_LOOKAHEAD = 50  # contacts looked at for one that is within its texting hours
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_gateways: dict[int, TwilioGateway] = {}


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def api(fn: Handler) -> Handler:
    """Answers SmsError and bad request bodies as JSON errors with their stable codes."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except SmsError as e:
            return error(e.status, e.code, str(e))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            return error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    return handler


# --- helpers -------------------------------------------------------------------------------------------


def settings_of(request: web.Request) -> SmsSettings:
    s = route_context(request).settings
    return s if isinstance(s, SmsSettings) else SmsSettings()


def gateway_of(request: web.Request) -> TwilioGateway:
    s = settings_of(request)
    gw = _gateways.get(id(s))
    if gw is None:
        gw = _gateways[id(s)] = TwilioGateway(s)
    return gw


async def _close_gateways() -> None:
    while _gateways:
        _, gw = _gateways.popitem()
        await gw.close()


plugin.on_cleanup.append(_close_gateways)


def require_twilio(request: web.Request) -> None:
    """A campaign is started only on a service that can send (else its sends would all fail)."""
    s = settings_of(request)
    if not s.account_sid or not s.auth_token or not (s.messaging_service_sid or s.numbers):
        raise SendRefused(
            "this service has no Twilio account to send with: set COUCHPOTATO_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and a "
            "Messaging Service or numbers",
            code="twilio_not_configured",
        )


def me(request: web.Request) -> tuple[str, str, bool]:
    """The caller: token id, name, holds the admin scope."""
    p = route_context(request).principal
    return str(p.token_id), str(p.name or p.token_id), bool(p.allows("admin"))


async def require_role(request: web.Request, campaign_id: int, at_least: str) -> str:
    """The caller's role in the campaign, at least ``at_least``; raises NotAllowed."""
    texter_id, _, admin = me(request)
    if admin:
        return "owner"
    role = await store.role_of(route_context(request).database, campaign_id, texter_id)
    if role is None or ROLES[role] < ROLES[at_least]:
        raise NotAllowed(f"this needs the {at_least} role in campaign {campaign_id} (yours: {role or 'none'})")
    return role


def int_param(request: web.Request, name: str) -> int:
    try:
        value = int(request.match_info[name])
    except ValueError:
        raise SmsError(f"{name} must be an integer", code="invalid_request") from None
    if not 0 < value < MAX_ID:
        raise SmsError(f"{name} is out of range", code="invalid_request")
    return value


async def body_of(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        data = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SmsError("the body is not JSON", code="invalid_json") from None
    return model.model_validate(data)


def status_url(request: web.Request) -> str:
    s = settings_of(request)
    if not s.status_callback or not s.public_url:
        return ""
    return f"{s.public_url.rstrip('/')}/v1/plugins/sms/{STATUS_PATH}"


def public_campaign(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "title", "script", "questions", "canned", "custom_fields", "start_hour",
                                "end_hour", "due_at", "active", "created_by", "created_at")}  # fmt: skip


# --- request models ------------------------------------------------------------------------------------


class AnswerOption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=200)
    script: str = Field(default="", max_length=1600)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=500)
    answers: list[AnswerOption] = Field(default_factory=list)


class Canned(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=1600)


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    script: str = Field(min_length=1, max_length=1600)
    questions: list[Question] = Field(default_factory=list)
    canned: list[Canned] = Field(default_factory=list)
    start_hour: int = Field(default=DEFAULT_START_HOUR, ge=0, le=23)
    end_hour: int = Field(default=DEFAULT_END_HOUR, ge=1, le=24)
    due_at: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=1e11)
    active: bool = False


class CampaignPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    script: str | None = Field(default=None, min_length=1, max_length=1600)
    start_hour: int | None = Field(default=None, ge=0, le=23)
    end_hour: int | None = Field(default=None, ge=1, le=24)
    due_at: float | None = Field(default=None, allow_inf_nan=False, ge=0, le=1e11)
    active: bool | None = None


class OptOutIn(BaseModel):
    """The optional body of ``PUT``/``DELETE opt-outs/{phone}``: why, for the audit log."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


class TexterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texter_id: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    role: Literal["owner", "admin", "supervolunteer", "texter"] = "texter"


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texter_id: str | None = Field(default=None, max_length=64)
    count: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=10_000)


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: int = Field(ge=1, lt=MAX_ID)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=1600)


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texter_id: str = Field(min_length=1, max_length=64)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=64)
    answer: str = Field(min_length=1, max_length=200)


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[str] = Field(max_length=50)


# --- campaigns -----------------------------------------------------------------------------------------

routes = plugin.routes


@routes.get("/campaigns")
@plugin.requires(SCOPE_TEXT)
@api
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    texter_id, _, admin = me(request)
    rows = await store.list_campaigns(route_context(request).database, None if admin else texter_id)
    return web.json_response({"campaigns": [public_campaign(r) for r in rows]})


@routes.post("/campaigns")
@plugin.requires(SCOPE_ADMIN)
@api
async def create_campaign(request: web.Request) -> web.StreamResponse:
    data: CampaignIn = await body_of(request, CampaignIn)
    if data.start_hour >= data.end_hour:
        raise SmsError("start_hour must be before end_hour", code="invalid_request")
    if data.active:
        require_twilio(request)
    texter_id, name, _ = me(request)
    values = data.model_dump()
    values["custom_fields"] = []
    row = await store.create_campaign(route_context(request).database, values, texter_id, name)
    return web.json_response(public_campaign(row), status=201)


@routes.get("/campaigns/{cid}")
@plugin.requires(SCOPE_TEXT)
@api
async def get_campaign(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    row = await store.get_campaign(route_context(request).database, cid)
    await require_role(request, cid, "texter")
    return web.json_response(public_campaign(row))


@routes.patch("/campaigns/{cid}")
@plugin.requires(SCOPE_TEXT)
@api
async def patch_campaign(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    current = await store.get_campaign(db, cid)
    await require_role(request, cid, "admin")
    data: CampaignPatch = await body_of(request, CampaignPatch)
    values = data.model_dump(exclude_unset=True, exclude_none=True)  # null leaves a field as it is
    if (values.get("start_hour", current["start_hour"])) >= values.get("end_hour", current["end_hour"]):
        raise SmsError("start_hour must be before end_hour", code="invalid_request")
    if values.get("active"):
        require_twilio(request)
    if "script" in values and current["custom_fields"]:  # contacts are loaded: their columns are known
        check_script(values["script"], current["custom_fields"])
    row = await store.update_campaign(db, cid, values) if values else current
    return web.json_response(public_campaign(row))


@routes.get("/campaigns/{cid}/texters")
@plugin.requires(SCOPE_TEXT)
@api
async def get_texters(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    await store.get_campaign(route_context(request).database, cid)
    await require_role(request, cid, "supervolunteer")
    return web.json_response({"texters": await store.list_texters(route_context(request).database, cid)})


@routes.post("/campaigns/{cid}/texters")
@plugin.requires(SCOPE_TEXT)
@api
async def put_texter(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    mine = await require_role(request, cid, "admin")
    data: TexterIn = await body_of(request, TexterIn)
    if ROLES[data.role] > ROLES[mine]:
        raise NotAllowed(f"an {mine} cannot make someone {data.role}")
    await store.set_texter(db, cid, data.texter_id, data.name or data.texter_id, data.role)
    return web.json_response({"campaign_id": cid, **data.model_dump()})


@routes.post("/campaigns/{cid}/join")
@plugin.requires(SCOPE_TEXT)
@api
async def join(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    texter_id, name, _ = me(request)
    role = await store.role_of(db, cid, texter_id)
    if role is None:
        role = "texter"
        await store.set_texter(db, cid, texter_id, name, role)
    return web.json_response({"campaign_id": cid, "texter_id": texter_id, "name": name, "role": role})


@routes.post("/campaigns/{cid}/contacts")
@plugin.requires(SCOPE_TEXT)
@api
async def upload_contacts(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    campaign = await store.get_campaign(db, cid)
    await require_role(request, cid, "admin")
    data = await request.read()
    if len(data) > MAX_CSV_BYTES:
        raise SmsError(f"send at most {MAX_CSV_BYTES} bytes of CSV per request (split the file)", code="too_large")
    first = parse_csv(data)  # the numbers, to look up what the campaign and the opt-out list hold
    check_script(campaign["script"], first.custom_fields)  # every merge field is a column of the list
    cells = [c.cell for c in first.contacts]
    parsed = parse_csv(
        data, opted_out=await store.opted_out_among(db, cells), seen=await store.existing_cells(db, cid, cells)
    )
    added = await store.add_contacts(db, cid, parsed.contacts, parsed.custom_fields)
    report = {"added": added, "invalid": parsed.invalid, "duplicates": parsed.duplicates,
              "opted_out": parsed.opted_out, "custom_fields": parsed.custom_fields}  # fmt: skip
    return web.json_response(report, status=201)


@routes.post("/campaigns/{cid}/assignments")
@plugin.requires(SCOPE_TEXT)
@api
async def assign(request: web.Request) -> web.StreamResponse:
    """An admin hands a texter a batch; a texter with nothing left to send asks for more."""
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    data: AssignIn = await body_of(request, AssignIn)
    me_id, _, _ = me(request)
    target = data.texter_id or me_id
    if target != me_id:
        await require_role(request, cid, "supervolunteer")
        if await store.role_of(db, cid, target) is None:
            raise SmsError(f"{target} is not a texter of campaign {cid}", code="not_a_texter")
    else:
        await require_role(request, cid, "texter")
        left = await store.unsent_count(db, cid, me_id)
        if left:
            raise SmsError(
                f"send your {left} assigned contact(s) first",
                code="batch_not_done",
            )
    got = await store.assign(db, cid, target, data.count)
    return web.json_response(
        {"texter_id": target, "assigned": got, "unsent": await store.unsent_count(db, cid, target)}
    )


@routes.get("/campaigns/{cid}/next")
@plugin.requires(SCOPE_TEXT)
@api
async def next_contact(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    campaign = await store.get_campaign(db, cid)
    await require_role(request, cid, "texter")
    texter_id, name, _ = me(request)
    now = datetime.now(UTC)
    candidates = await store.next_contacts(db, cid, texter_id, NEXT_LOOKAHEAD)
    # the first one it is texting hours for: a contact whose evening is over does not block the others
    contact = next(
        (c for c in candidates if within_texting_hours(c["zone"], now, campaign["start_hour"], campaign["end_hour"])),
        None,
    )
    unsent = await store.unsent_count(db, cid, texter_id) if candidates else 0
    if contact is None:
        waiting = "; the others are outside their texting hours now" if candidates else ""
        return web.json_response(
            {"contact": None, "message": None, "unsent": unsent, "note": f"nobody to text{waiting}"}
        )
    message = render(campaign["script"], texting.merge_values(contact, name))
    return web.json_response({"contact": contact_out(contact), "message": message, "unsent": unsent, "note": ""})


def contact_out(c: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "campaign_id", "first_name", "last_name", "cell", "zip", "zone", "custom", "texter_id", "status",
            "texted_at", "tags")  # fmt: skip
    return {k: c[k] for k in keys}


# --- sending and conversations -------------------------------------------------------------------------


@routes.post("/send")
@plugin.requires(SCOPE_TEXT)
@api
async def send(request: web.Request) -> web.StreamResponse:
    data: SendIn = await body_of(request, SendIn)
    texter_id, _, _ = me(request)
    result = await texting.send(
        route_context(request).database,
        gateway_of(request),
        data.contact_id,
        texter_id,
        status_callback=status_url(request),
    )
    return web.json_response(result.__dict__, status=201)


async def _conversation_access(request: web.Request, contact_id: int) -> dict[str, Any]:
    db = route_context(request).database
    contact = await store.get_contact(db, contact_id)
    texter_id, _, _ = me(request)
    if contact["texter_id"] != texter_id:
        await require_role(request, contact["campaign_id"], "supervolunteer")
    return contact


@routes.get("/campaigns/{cid}/conversations")
@plugin.requires(SCOPE_TEXT)
@api
async def list_conversations(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    role = await require_role(request, cid, "texter")
    texter_id, _, _ = me(request)
    everyone = request.query.get("all") == "1" and ROLES[role] >= ROLES["supervolunteer"]
    rows = await store.conversations(db, cid, None if everyone else texter_id)
    return web.json_response({"conversations": [contact_out(r) for r in rows]})


@routes.get("/conversations/{contact_id}")
@plugin.requires(SCOPE_TEXT)
@api
async def get_conversation(request: web.Request) -> web.StreamResponse:
    contact_id = int_param(request, "contact_id")
    contact = await _conversation_access(request, contact_id)
    msgs = await store.conversation(route_context(request).database, contact_id)
    return web.json_response({"contact": contact_out(contact), "messages": msgs})


@routes.post("/conversations/{contact_id}/messages")
@plugin.requires(SCOPE_TEXT)
@api
async def reply(request: web.Request) -> web.StreamResponse:
    contact_id = int_param(request, "contact_id")
    data: ReplyIn = await body_of(request, ReplyIn)
    texter_id, _, _ = me(request)
    result = await texting.send(
        route_context(request).database, gateway_of(request), contact_id, texter_id, body=data.body,
        status_callback=status_url(request),
    )  # fmt: skip
    return web.json_response(result.__dict__, status=201)


@routes.post("/conversations/{contact_id}/reassign")
@plugin.requires(SCOPE_TEXT)
@api
async def reassign(request: web.Request) -> web.StreamResponse:
    contact_id = int_param(request, "contact_id")
    db = route_context(request).database
    contact = await store.get_contact(db, contact_id)
    await require_role(request, contact["campaign_id"], "supervolunteer")
    data: ReassignIn = await body_of(request, ReassignIn)
    if await store.role_of(db, contact["campaign_id"], data.texter_id) is None:
        raise SmsError(f"{data.texter_id} is not a texter of campaign {contact['campaign_id']}", code="not_a_texter")
    await store.reassign(db, contact_id, data.texter_id)
    return web.json_response({"contact_id": contact_id, "texter_id": data.texter_id})


@routes.post("/conversations/{contact_id}/answers")
@plugin.requires(SCOPE_TEXT)
@api
async def answer(request: web.Request) -> web.StreamResponse:
    contact_id = int_param(request, "contact_id")
    db = route_context(request).database
    contact = await _conversation_access(request, contact_id)
    data: AnswerIn = await body_of(request, AnswerIn)
    campaign = await store.get_campaign(db, contact["campaign_id"])
    question = next((q for q in campaign["questions"] if q["id"] == data.question), None)
    if question is None:
        raise SmsError(f"no question {data.question} in this campaign", code="unknown_question")
    if question["answers"] and data.answer not in {a["value"] for a in question["answers"]}:
        raise SmsError(f"{data.answer!r} is not an answer option of {data.question}", code="unknown_answer")
    texter_id, name, _ = me(request)
    await store.save_answer(db, contact_id, data.question, data.answer, texter_id)
    # the interaction step: the answer option's script, rendered, is the suggested next message
    option = next((a for a in question["answers"] if a["value"] == data.answer), None)
    suggested = render(option["script"], texting.merge_values(contact, name)) if option and option["script"] else None
    return web.json_response({"contact_id": contact_id, **data.model_dump(), "suggested_reply": suggested})


@routes.put("/conversations/{contact_id}/tags")
@plugin.requires(SCOPE_TEXT)
@api
async def tags(request: web.Request) -> web.StreamResponse:
    contact_id = int_param(request, "contact_id")
    await _conversation_access(request, contact_id)
    data: TagsIn = await body_of(request, TagsIn)
    clean = sorted({t.strip()[:40] for t in data.tags if t.strip()})
    await store.set_tags(route_context(request).database, contact_id, clean)
    return web.json_response({"contact_id": contact_id, "tags": clean})


@routes.get("/campaigns/{cid}/review")
@plugin.requires(SCOPE_TEXT)
@api
async def review(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    await require_role(request, cid, "supervolunteer")
    return web.json_response({"messages": await store.messages_for_review(db, cid)})


@routes.get("/campaigns/{cid}/export")
@plugin.requires(SCOPE_TEXT)
@api
async def export(request: web.Request) -> web.StreamResponse:
    cid = int_param(request, "cid")
    db = route_context(request).database
    await store.get_campaign(db, cid)
    await require_role(request, cid, "admin")
    rows = await store.export_answers(db, cid)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["contact_id", "first_name", "last_name", "cell", "zip", "texter_id", "tags", "question", "answer"])
    for r in rows:
        w.writerow([r["id"], r["first_name"], r["last_name"], r["cell"], r["zip"], r["texter_id"],
                    ";".join(r["tags"] or []), r["question"], r["answer"]])  # fmt: skip
    return web.Response(text=out.getvalue(), content_type="text/csv")


@routes.get("/opt-outs/{phone}")
@plugin.requires(SCOPE_TEXT)
@api
async def get_opt_out(request: web.Request) -> web.StreamResponse:
    phone = to_e164(request.match_info["phone"])
    opted = await store.is_opted_out(route_context(request).database, phone)
    return web.json_response({"phone": phone, "opted_out": opted})


def _actor(request: web.Request) -> tuple[str, str]:
    """Who is changing the list by hand, for its audit log: the caller's id and name (or e-mail)."""
    p = route_context(request).principal
    return str(p.token_id), str(p.name or p.email or "")


async def _by_hand(request: web.Request) -> tuple[str, str]:
    """The phone of ``opt-outs/{phone}`` in E.164, and the audit detail (the optional reason)."""
    phone = to_e164(request.match_info["phone"])
    reason = (await body_of(request, OptOutIn)).reason
    return phone, f"by hand: {reason}" if reason else "by hand"


@routes.put("/opt-outs/{phone}")
@plugin.requires(SCOPE_ADMIN)
@api
async def put_opt_out(request: web.Request) -> web.StreamResponse:
    """Put a number on the shared opt-out list by hand (someone asked by phone or e-mail); audited."""
    phone, detail = await _by_hand(request)
    changed = await store.opt_out(route_context(request).database, phone, "admin", detail, _actor(request))
    return web.json_response({"phone": phone, "opted_out": True, "changed": changed})


@routes.delete("/opt-outs/{phone}")
@plugin.requires(SCOPE_ADMIN)
@api
async def delete_opt_out(request: web.Request) -> web.StreamResponse:
    """Take a number off the list by hand (an opt-out made in error); audited."""
    phone, detail = await _by_hand(request)
    changed = await store.opt_in(route_context(request).database, phone, "admin", detail, _actor(request))
    return web.json_response({"phone": phone, "opted_out": False, "changed": changed})


@routes.get("/opt-outs/{phone}/log")
@plugin.requires(SCOPE_ADMIN)
@api
async def opt_out_log(request: web.Request) -> web.StreamResponse:
    """The number's audit log: every opt-out and undo, by whom (keyword, carrier or admin)."""
    phone = to_e164(request.match_info["phone"])
    rows = await store.opt_out_history(route_context(request).database, phone)
    return web.json_response({"phone": phone, "log": [{k: r[k] for k in LOG_FIELDS} for r in rows]})


# --- Twilio's webhooks (public: X-Twilio-Signature) ----------------------------------------------------


async def _signed_form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    url = signed_url(settings_of(request).public_url, request.path_qs, str(request.url))
    verify(
        settings_of(request), url, params, request.headers.get("X-Twilio-Signature", ""),
        request.headers.get("X-Twilio-Webhooks-Signature-Settings", ""),
    )  # fmt: skip
    return params


@routes.post(f"/{STATUS_PATH}")
@api
async def twilio_status(request: web.Request) -> web.StreamResponse:
    form = await _signed_form(request)
    recorded = await texting.status_callback(route_context(request).database, form)
    return web.json_response({"recorded": recorded})


@routes.post(f"/{INBOUND_PATH}")
@api
async def twilio_inbound(request: web.Request) -> web.StreamResponse:
    form = await _signed_form(request)
    s = settings_of(request)
    result = await texting.inbound(
        route_context(request).database, KeywordRules.of(s.opt_out_keywords, s.opt_out_patterns), form
    )
    twiml = "<Response/>"
    if result.reply:
        twiml = f"<Response><Message>{result.reply}</Message></Response>"
    return web.Response(text=f'<?xml version="1.0" encoding="UTF-8"?>{twiml}', content_type="text/xml")


# --- the console page (public: it signs in with the token the user pastes) -------------------------------

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@routes.get("/console")
async def console(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "console.html", headers=PAGE_HEADERS)


@routes.get("/console.js")
async def console_js(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB_DIR / "console.js", headers={**PAGE_HEADERS, "Content-Type": "text/javascript"})


for _method, _path in (("POST", STATUS_PATH), ("POST", INBOUND_PATH), ("GET", "console"), ("GET", "console.js")):
    plugin.public(_method, _path)

__all__ = ["routes"]
