"""The OpenAPI description of the plugin's routes (``plugin.openapi``; the host adds it to
``/openapi.json`` under ``/v1/plugins/sms/``). Request bodies are the routes' own pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .constants import INBOUND_PATH, STATUS_PATH
from .routes import (
    AnswerIn,
    AssignIn,
    CampaignIn,
    CampaignPatch,
    OptOutIn,
    ReassignIn,
    ReplyIn,
    SendIn,
    TagsIn,
    TexterIn,
)

REF = "#/components/schemas/Sms{model}"
OBJECT = {"type": "object"}
FORM = "application/x-www-form-urlencoded"
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
BEARER_ERRORS = {
    "400": "invalid request (`invalid_request`, `invalid_json`, `invalid_phone`, `invalid_csv`, `unknown_field`, …)",
    "401": "no token, or an unknown one",
    "403": "the token lacks the scope, or the campaign role (`sms_forbidden`)",
    "404": "no such campaign or contact",
    "409": "a send check failed (`opted_out`, `outside_texting_hours`, `campaign_inactive`, `not_assigned`, …)",
    "502": "Twilio refused the message or is not configured (`twilio_error`)",
}


def _schemas() -> tuple[dict[str, Any], dict[type[BaseModel], dict[str, Any]]]:
    defs: dict[str, Any] = {}
    refs: dict[type[BaseModel], dict[str, Any]] = {}
    models = (CampaignIn, CampaignPatch, TexterIn, AssignIn, SendIn, ReplyIn, ReassignIn, AnswerIn, TagsIn, OptOutIn)
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            defs[f"Sms{name}"] = sub
        defs[f"Sms{model.__name__}"] = schema
        refs[model] = {"$ref": REF.format(model=model.__name__)}
    return defs, refs


def _op(
    op_id: str,
    summary: str,
    *,
    ok: str = "200",
    body: dict[str, Any] | None = None,
    params: tuple[tuple[str, str], ...] = (),
    media: str = "application/json",
    public: bool = False,
    body_media: str = "application/json",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": ["sms"],
        "responses": {
            ok: {
                "description": "done",
                "content": {media: {"schema": OBJECT if "json" in media else {"type": "string"}}},
            }
        },
    }
    if public:
        spec["security"] = []
    else:
        for status, text in BEARER_ERRORS.items():
            spec["responses"][status] = {"description": text, "content": ERROR}
    if params:
        spec["parameters"] = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": t, **({"minimum": 1} if t == "integer" else {})},
            }
            for n, t in params
        ]
    if body is not None:
        spec["requestBody"] = {"required": True, "content": {body_media: {"schema": body}}}
    return spec


def describe() -> dict[str, dict[str, Any]]:
    defs, ref = _schemas()
    cid = (("cid", "integer"),)
    contact = (("contact_id", "integer"),)
    form = {"type": "object", "additionalProperties": {"type": "string"}}
    webhook_answers = {"403": {"description": "no valid X-Twilio-Signature (`bad_signature`)", "content": ERROR},
                       "400": {"description": "unreadable form", "content": ERROR}}  # fmt: skip
    status_op = _op("smsTwilioStatus", "Twilio's message status callback (X-Twilio-Signature)", body=form,
                    public=True, body_media=FORM)  # fmt: skip
    inbound_op = _op("smsTwilioInbound", "Twilio's incoming-message webhook (X-Twilio-Signature); answers TwiML",
                     body=form, public=True, media="text/xml", body_media=FORM)  # fmt: skip
    for op in (status_op, inbound_op):
        op["responses"].update(webhook_answers)
        op["parameters"] = [
            {"name": "X-Twilio-Signature", "in": "header", "required": False, "schema": {"type": "string"}}
        ]
    phone = (("phone", "string"),)

    def by_hand(op_id: str, summary: str) -> dict[str, Any]:
        op = _op(op_id, summary, params=phone, body=ref[OptOutIn])
        op["requestBody"]["required"] = False  # the reason is optional
        return op

    paths = {
        "campaigns": {
            "get": _op("smsListCampaigns", "Campaigns (yours; every one for an admin token)"),
            "post": _op("smsCreateCampaign", "Create a campaign (you are its owner)", ok="201", body=ref[CampaignIn]),
        },
        "campaigns/{cid}": {
            "get": _op("smsGetCampaign", "A campaign", params=cid),
            "patch": _op("smsPatchCampaign", "Change a campaign (admin)", params=cid, body=ref[CampaignPatch]),
        },
        "campaigns/{cid}/texters": {
            "get": _op("smsListTexters", "Texters and roles (supervolunteer)", params=cid),
            "post": _op("smsSetTexter", "Add a texter or change a role (admin)", params=cid, body=ref[TexterIn]),
        },
        "campaigns/{cid}/join": {"post": _op("smsJoin", "Join as a texter", params=cid)},
        "campaigns/{cid}/contacts": {
            "post": _op(
                "smsUploadContacts",
                "Upload contacts (CSV, at most 60 KiB per request; admin)",
                ok="201",
                params=cid,
                body={"type": "string"},
                body_media="text/csv",
            ),
        },
        "campaigns/{cid}/assignments": {
            "post": _op(
                "smsAssign", "Assign a batch (to a texter; or more for yourself)", params=cid, body=ref[AssignIn]
            ),
        },
        "campaigns/{cid}/next": {
            "get": _op("smsNextContact", "Your next contact and its rendered message", params=cid)
        },
        "send": {"post": _op("smsSend", "Send the first message to a contact (one click)", ok="201", body=ref[SendIn])},
        "campaigns/{cid}/conversations": {"get": _op("smsConversations", "Your conversations", params=cid)},
        "conversations/{contact_id}": {"get": _op("smsConversation", "A conversation's messages", params=contact)},
        "conversations/{contact_id}/messages": {
            "post": _op("smsReply", "Reply in a conversation", ok="201", params=contact, body=ref[ReplyIn]),
        },
        "conversations/{contact_id}/reassign": {
            "post": _op(
                "smsReassign", "Reassign a conversation (supervolunteer)", params=contact, body=ref[ReassignIn]
            ),
        },
        "conversations/{contact_id}/answers": {
            "post": _op("smsAnswer", "Record a survey answer", params=contact, body=ref[AnswerIn]),
        },
        "conversations/{contact_id}/tags": {
            "put": _op("smsTags", "Set a conversation's tags", params=contact, body=ref[TagsIn])
        },
        "campaigns/{cid}/review": {"get": _op("smsReview", "Recent messages (supervolunteer)", params=cid)},
        "campaigns/{cid}/export": {
            "get": _op("smsExport", "Survey answers as CSV (admin)", params=cid, media="text/csv"),
        },
        "opt-outs/{phone}": {
            "get": _op("smsOptOut", "Is this number opted out? (any phone format)", params=phone),
            "put": by_hand("smsPutOptOut", "Put a number on the opt-out list by hand (sms:admin; audited)"),
            "delete": by_hand("smsDeleteOptOut", "Take a number off the opt-out list by hand (sms:admin; audited)"),
        },
        "opt-outs/{phone}/log": {
            "get": _op("smsOptOutLog", "A number's opt-out audit log: what, how, by whom (sms:admin)", params=phone),
        },
        STATUS_PATH: {"post": status_op},
        INBOUND_PATH: {"post": inbound_op},
    }
    return {"paths": paths, "schemas": defs}


__all__ = ["describe"]
