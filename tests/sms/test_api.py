"""The HTTP API end to end: a real service, the real twilio client, the stand-in of Twilio."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from .conftest import ADMIN_TOKEN, PUBLIC_URL, Sms, start_sms
from .standin import Standin

CSV = (
    "first_name,last_name,cell,zip,Precinct\n"
    "Ana,Ruiz,(415) 555-2671,94103,12\n"
    "Bo,Li,+1 212 555 0143,10001,3\n"
    "Cy,Ng,212-555-0199,60601,7\n"
    "Di,Oh,nope,10001,1\n"
)


async def campaign(sms: Sms, csv: str = CSV, **kw: object) -> int:
    body = {"title": "GOTV", "script": "Hi {firstName}, it's {texterName}. Vote at precinct {Precinct}!",
            "questions": [{"id": "support", "text": "Will you vote?",
                           "answers": [{"value": "yes", "script": "Great, {firstName}! Polls open at 7."},
                                       {"value": "no"}]}],
            "start_hour": 0, "end_hour": 24, "active": True, **kw}  # fmt: skip
    status, c = await sms.call("POST", "campaigns", json=body)
    assert status == 201, c
    status, report = await sms.call("POST", f"campaigns/{c['id']}/contacts", data=csv.encode())
    assert status == 201 and report["added"] == len(csv.splitlines()) - 2, report
    return int(c["id"])


async def texter(sms: Sms, cid: int, name: str, role: str = "texter") -> tuple[str, str]:
    secret, tid = await sms.token(name)
    status, _ = await sms.call("POST", f"campaigns/{cid}/texters", json={"texter_id": tid, "name": name, "role": role})
    assert status == 200
    return secret, tid


async def test_upload_assign_send_reply_stop(sms: Sms) -> None:
    cid = await campaign(sms)
    secret, tid = await texter(sms, cid, "Zoe")
    status, got = await sms.call("POST", f"campaigns/{cid}/assignments", secret, json={"count": 2})
    assert status == 200 and got["assigned"] == 2
    status, nxt = await sms.call("GET", f"campaigns/{cid}/next", secret)
    assert status == 200 and nxt["message"] == "Hi Ana, it's Zoe. Vote at precinct 12!" and nxt["unsent"] == 2
    contact_id = nxt["contact"]["id"]
    status, sent = await sms.call("POST", "send", secret, json={"contact_id": contact_id})
    assert status == 201 and sent["sid"].startswith("SM"), sent
    [req] = sms.standin.received
    assert req["To"] == "+14155552671" and req["Body"] == nxt["message"]
    assert req["StatusCallback"] == f"{PUBLIC_URL}/v1/plugins/sms/twilio/status"
    assert 1 <= int(req["ValidityPeriod"]) <= 36_000
    # a second click on the same contact sends nothing
    status, again = await sms.call("POST", "send", secret, json={"contact_id": contact_id})
    assert status == 409 and again["error"]["code"] == "already_sent" and len(sms.standin.received) == 1
    # asking for more before the batch is done is refused
    status, more = await sms.call("POST", f"campaigns/{cid}/assignments", secret, json={"count": 5})
    assert status == 400 and more["error"]["code"] == "batch_not_done"

    # the reply lands in Zoe's conversation
    assert await sms.webhook("twilio/inbound", {"From": "+14155552671", "To": "+15005550006", "Body": "Yes!",
                                                "MessageSid": "SMin1", "AccountSid": "AC1"}) == 200  # fmt: skip
    status, conv = await sms.call("GET", f"conversations/{contact_id}", secret)
    assert status == 200 and [m["direction"] for m in conv["messages"]] == ["out", "in"]
    assert conv["messages"][1]["texter_id"] == tid and conv["contact"]["status"] == "replied"
    status, ans = await sms.call("POST", f"conversations/{contact_id}/answers", secret,
                                 json={"question": "support", "answer": "yes"})  # fmt: skip
    assert status == 200 and ans["suggested_reply"] == "Great, Ana! Polls open at 7."
    status, r = await sms.call("POST", f"conversations/{contact_id}/messages", secret, json={"body": "Thanks!"})
    assert status == 201 and sms.standin.received[-1]["Body"] == "Thanks!"

    # STOP in any case: on the shared list, no confirmation of ours (the carrier sends it)
    async with sms.http.post(
        sms.url("twilio/inbound"),
        data=(p := {"From": "(415) 555-2671", "To": "+15005550006", "Body": " stop. ", "MessageSid": "SMin2"}),
        headers={"X-Twilio-Signature": sms.standin.sign(f"{PUBLIC_URL}/v1/plugins/sms/twilio/inbound", p)},
    ) as resp:
        assert resp.status == 200 and "<Message>" not in await resp.text()
    for form in ("+14155552671", "4155552671", "(415)%20555-2671"):
        status, oo = await sms.call("GET", f"opt-outs/{form}", secret)
        assert status == 200 and oo == {"phone": "+14155552671", "opted_out": True}
    status, r = await sms.call("POST", f"conversations/{contact_id}/messages", secret, json={"body": "wait"})
    assert status == 409 and r["error"]["code"] == "opted_out"
    # START undoes it, audited
    assert await sms.webhook("twilio/inbound", {"From": "+14155552671", "Body": "START", "MessageSid": "SMin3"}) == 200
    status, oo = await sms.call("GET", "opt-outs/+14155552671", secret)
    assert oo["opted_out"] is False
    async with sms.service.db.read() as conn:
        from plugins.sms.store import opt_out_log

        actions = [r.action for r in await conn.execute(opt_out_log.select().order_by(opt_out_log.c.id))]
    assert actions == ["opt_out", "opt_in"]
    # survey export
    status, text = await sms.call("GET", f"campaigns/{cid}/export")
    assert status == 200 and "support,yes" in text


async def test_a_texter_cannot_send_to_a_contact_not_assigned_to_them(sms: Sms) -> None:
    cid = await campaign(sms)
    a, _ = await texter(sms, cid, "A")
    b, _ = await texter(sms, cid, "B")
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 1})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    status, r = await sms.call("POST", "send", b, json={"contact_id": nxt["contact"]["id"]})
    assert status == 409 and r["error"]["code"] == "not_assigned" and sms.standin.received == []
    status, r = await sms.call("GET", f"conversations/{nxt['contact']['id']}", b)
    assert status == 403 and r["error"]["code"] == "sms_forbidden"
    status, r = await sms.call("POST", f"campaigns/{cid}/contacts", a, data=CSV.encode())
    assert status == 403  # a texter cannot upload


async def test_the_plugins_scopes_and_not_the_jobs_scopes_open_its_routes(sms: Sms) -> None:
    """Least privilege: a texter's credentials hold ``sms:text`` only; ``jobs:write`` (which runs any
    plugin's jobs) opens nothing here, and creating a campaign needs ``sms:admin``."""
    cid = await campaign(sms)
    jobs, _ = await sms.token("jobs only", ("jobs:read", "jobs:write"))
    status, r = await sms.call("GET", "campaigns", jobs)
    assert status == 403 and "sms:text" in r["error"]["message"], r
    status, r = await sms.call("GET", "opt-outs/+12025550143", jobs)
    assert status == 403, r
    text, tid = await sms.token("Ana", ("sms:text",))
    status, r = await sms.call("POST", "campaigns", text, json={"title": "mine", "script": "Hi"})
    assert status == 403 and "sms:admin" in r["error"]["message"], r
    await sms.call("POST", f"campaigns/{cid}/texters", json={"texter_id": tid, "name": "Ana", "role": "texter"})
    status, r = await sms.call("POST", f"campaigns/{cid}/assignments", text, json={"count": 1})
    assert status in (200, 201), r
    status, r = await sms.call("GET", "opt-outs/(202) 555-0143", text)
    assert status == 200 and r == {"phone": "+12025550143", "opted_out": False}, r


async def test_send_outside_the_contacts_texting_hours_is_refused(sms: Sms) -> None:
    ny_hour = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).hour
    start = (ny_hour + 2) % 24
    start, end = (start, start + 1) if start < 23 else (0, 1)
    ny_only = "first_name,last_name,cell,zip,Precinct\nBo,Li,+1 212 555 0143,10001,3\nx,y,bad,1,1\n"
    cid = await campaign(sms, ny_only, start_hour=start, end_hour=end)
    a, _ = await texter(sms, cid, "A")
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 3})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    assert nxt["contact"] is None and nxt["unsent"] == 1  # not offered
    async with sms.service.db.read() as conn:
        from plugins.sms.store import contacts

        contact_id = (await conn.execute(contacts.select().where(contacts.c.campaign_id == cid))).first().id
    status, r = await sms.call("POST", "send", a, json={"contact_id": contact_id})  # sent anyway: refused
    assert status == 409 and r["error"]["code"] == "outside_texting_hours" and sms.standin.received == []


async def test_inactive_campaign_and_carrier_stop(sms: Sms) -> None:
    cid = await campaign(sms, active=False)
    a, _ = await texter(sms, cid, "A")
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 3})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    status, r = await sms.call("POST", "send", a, json={"contact_id": nxt["contact"]["id"]})
    assert status == 409 and r["error"]["code"] == "campaign_inactive"
    await sms.call("PATCH", f"campaigns/{cid}", json={"active": True})
    sms.standin.unsubscribed.add("+14155552671")
    status, r = await sms.call("POST", "send", a, json={"contact_id": nxt["contact"]["id"]})
    assert status == 409 and r["error"]["code"] == "opted_out"
    _, oo = await sms.call("GET", "opt-outs/4155552671")
    assert oo["opted_out"] is True
    _, nxt2 = await sms.call("GET", f"campaigns/{cid}/next", a)
    assert nxt2["contact"]["id"] != nxt["contact"]["id"]  # opted out: not offered again


async def test_status_callbacks_duplicate_and_out_of_order(sms: Sms) -> None:
    cid = await campaign(sms)
    a, _ = await texter(sms, cid, "A")
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 1})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    _, sent = await sms.call("POST", "send", a, json={"contact_id": nxt["contact"]["id"]})
    sid = sent["sid"]

    async def status_of() -> str:
        _, conv = await sms.call("GET", f"conversations/{nxt['contact']['id']}", a)
        return str(conv["messages"][0]["status"])

    for st in ("sending", "delivered", "sent", "delivered", "undelivered", "queued"):
        params = {"MessageSid": sid, "MessageStatus": st, "To": "+14155552671", "From": "+15005550006",
                  "AccountSid": "AC1", "SomeNewTwilioField": "x"}  # fmt: skip
        assert await sms.webhook("twilio/status", params) == 200
    assert await status_of() == "delivered"


async def test_unsigned_or_tampered_webhooks_get_403_and_change_nothing(sms: Sms) -> None:
    params = {"From": "+14155552671", "Body": "STOP", "MessageSid": "SMx"}
    async with sms.http.post(sms.url("twilio/inbound"), data=params) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "bad_signature"
    sig = sms.standin.sign(f"{PUBLIC_URL}/v1/plugins/sms/twilio/inbound", params)
    tampered = {**params, "From": "+12125550143"}
    async with sms.http.post(sms.url("twilio/inbound"), data=tampered, headers={"X-Twilio-Signature": sig}) as r:
        assert r.status == 403
    # signed over another URL (the internal one, not COUCHPOTATO_PUBLIC_URL)
    assert await sms.webhook("twilio/inbound", params, sign_url=sms.url("twilio/inbound")) == 403
    for phone in ("+14155552671", "+12125550143"):
        _, oo = await sms.call("GET", f"opt-outs/{phone}")
        assert oo["opted_out"] is False
    # with the default port written out, the same signature is valid
    assert (
        await sms.webhook("twilio/inbound", params, sign_url=f"{PUBLIC_URL}:443/v1/plugins/sms/twilio/inbound") == 200
    )
    _, oo = await sms.call("GET", "opt-outs/+14155552671")
    assert oo["opted_out"] is True


async def test_bad_input_gets_json_errors_with_stable_codes(sms: Sms) -> None:
    status, r = await sms.call("GET", "opt-outs/not-a-phone")
    assert status == 400 and r["error"]["code"] == "invalid_phone"
    status, r = await sms.call("POST", "campaigns", data=b"{nope", headers={"Content-Type": "application/json"})
    assert status == 400 and r["error"]["code"] == "invalid_json"
    status, r = await sms.call("POST", "campaigns", json={"title": "x", "script": "Hi {nobody}"})
    assert status == 201
    status, r = await sms.call("POST", f"campaigns/{r['id']}/contacts", data=CSV.encode())
    assert status == 400 and r["error"]["code"] == "unknown_field" and "nobody" in r["error"]["message"]
    status, r = await sms.call("POST", "campaigns", json={"title": "x", "script": "hi", "start_hour": 30})
    assert status == 400 and r["error"]["code"] == "invalid_request"
    status, r = await sms.call("GET", "campaigns/999")
    assert status == 404 and r["error"]["code"] == "campaign_not_found"
    status, r = await sms.call("POST", "campaigns/1/contacts", data=b"name\nx\n")
    assert status in (400, 404)
    cid = await campaign(sms)
    status, r = await sms.call("POST", f"campaigns/{cid}/contacts", data=b"name\nx\n")
    assert status == 400 and r["error"]["code"] == "invalid_csv"
    async with sms.http.get(sms.url("opt-outs/+14155552671")) as resp:
        assert resp.status == 401  # bearer token needed
    async with sms.http.get(sms.url("console")) as resp:
        assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        assert "/v1/plugins/sms/console.js" in await resp.text()
    async with sms.http.get(sms.url("console.js")) as resp:
        assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]
        assert "/v1/plugins/sms" in await resp.text()


async def test_supervision_reassign_tags_review_and_inbound_follows_the_new_texter(sms: Sms) -> None:
    cid = await campaign(sms)
    a, _ = await texter(sms, cid, "A")
    sup, _ = await texter(sms, cid, "S", "supervolunteer")
    b, b_id = await sms.token("B")
    status, joined = await sms.call("POST", f"campaigns/{cid}/join", b)
    assert status == 200 and joined["role"] == "texter" and joined["texter_id"] == b_id
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 1})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    contact_id = nxt["contact"]["id"]
    await sms.call("POST", "send", a, json={"contact_id": contact_id})
    # a texter may not reassign; a supervolunteer may, to a texter of the campaign only
    status, r = await sms.call("POST", f"conversations/{contact_id}/reassign", a, json={"texter_id": b_id})
    assert status == 403
    status, r = await sms.call("POST", f"conversations/{contact_id}/reassign", sup, json={"texter_id": "nobody"})
    assert status == 400 and r["error"]["code"] == "not_a_texter"
    status, r = await sms.call("POST", f"conversations/{contact_id}/reassign", sup, json={"texter_id": b_id})
    assert status == 200
    assert await sms.webhook("twilio/inbound", {"From": "+14155552671", "Body": "hi?", "MessageSid": "SMr1"}) == 200
    status, conv = await sms.call("GET", f"conversations/{contact_id}", b)
    assert status == 200 and conv["messages"][-1]["texter_id"] == b_id and conv["messages"][-1]["body"] == "hi?"
    status, _ = await sms.call("GET", f"conversations/{contact_id}", a)
    assert status == 403  # no longer A's
    status, r = await sms.call("POST", f"conversations/{contact_id}/messages", a, json={"body": "x"})
    assert status == 409 and r["error"]["code"] == "not_assigned"
    status, t = await sms.call("PUT", f"conversations/{contact_id}/tags", b, json={"tags": ["hot", " hot ", "vol"]})
    assert status == 200 and t["tags"] == ["hot", "vol"]
    _, mine = await sms.call("GET", f"campaigns/{cid}/conversations", b)
    assert [c["id"] for c in mine["conversations"]] == [contact_id] and mine["conversations"][0]["tags"] == [
        "hot",
        "vol",
    ]
    _, everyone = await sms.call("GET", f"campaigns/{cid}/conversations?all=1", a)
    assert everyone["conversations"] == []  # a texter's all=1 is still their own
    status, rev = await sms.call("GET", f"campaigns/{cid}/review", sup)
    assert status == 200 and {m["direction"] for m in rev["messages"]} == {"in", "out"}
    status, _ = await sms.call("GET", f"campaigns/{cid}/review", a)
    assert status == 403
    status, r = await sms.call(
        "POST", f"conversations/{contact_id}/answers", b, json={"question": "support", "answer": "maybe"}
    )
    assert status == 400 and r["error"]["code"] == "unknown_answer"
    status, r = await sms.call("POST", "send", a, json={"contact_id": 2**70})
    assert status == 400 and r["error"]["code"] == "invalid_request"
    status, r = await sms.call("GET", "campaigns/99999999999999999999999")
    assert status == 400


async def test_group_commit_isolates_a_failing_write(sms: Sms) -> None:
    import asyncio

    from sqlalchemy import text

    from plugins.sms.store import grouped

    db = sms.service.db

    async def good(conn: object) -> int:
        await conn.execute(text("INSERT INTO sms_opt_outs (phone, source, at) VALUES ('+15550001', 'test', 0)"))  # type: ignore[attr-defined]
        return 1

    async def bad(conn: object) -> int:
        await conn.execute(text("INSERT INTO no_such_table VALUES (1)"))  # type: ignore[attr-defined]
        return 2

    results = await asyncio.gather(grouped(db, good), grouped(db, bad), return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], Exception)
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sms_opt_outs WHERE phone = '+15550001'"))).scalar() == 1


async def test_the_routes_are_in_the_openapi_document(sms: Sms) -> None:
    async with sms.http.get(f"{sms.base}/openapi.json", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        doc = await r.json()
    paths = doc["paths"]
    for path in (
        "campaigns",
        "campaigns/{cid}/contacts",
        "send",
        "opt-outs/{phone}",
        "opt-outs/{phone}/log",
        "twilio/status",
        "twilio/inbound",
    ):
        assert f"/v1/plugins/sms/{path}" in paths
    assert paths["/v1/plugins/sms/twilio/inbound"]["post"]["security"] == []
    assert {"get", "put", "delete"} <= set(paths["/v1/plugins/sms/opt-outs/{phone}"])
    assert "security" not in paths["/v1/plugins/sms/send"]["post"]  # the document's bearer default
    refs = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])
    assert "SmsCampaignIn" in refs and "SmsQuestion" in refs


async def test_without_twilio_a_campaign_cannot_be_started(tmp_path: Path, standin: Standin) -> None:
    async with start_sms(tmp_path, standin, account_sid="", auth_token="") as sms:
        status, r = await sms.call("POST", "campaigns", json={"title": "t", "script": "hi", "active": True})
        assert status == 409 and r["error"]["code"] == "twilio_not_configured"
        status, c = await sms.call("POST", "campaigns", json={"title": "t", "script": "hi"})
        assert status == 201
        status, r = await sms.call("PATCH", f"campaigns/{c['id']}", json={"active": True})
        assert status == 409 and r["error"]["code"] == "twilio_not_configured"
        # and webhooks are refused: nothing can sign them
        assert await sms.webhook("twilio/status", {"MessageSid": "SM1", "MessageStatus": "delivered"}) == 403


async def test_a_status_callback_with_error_21610_opts_the_number_out(sms: Sms) -> None:
    params = {"MessageSid": "SMzz", "MessageStatus": "undelivered", "ErrorCode": "21610", "To": "+1 (212) 555-0143"}
    assert await sms.webhook("twilio/status", params) == 200
    _, oo = await sms.call("GET", "opt-outs/2125550143")
    assert oo == {"phone": "+12125550143", "opted_out": True}


async def test_the_flow_on_postgresql(tmp_path: Path, standin: Standin) -> None:
    from tests.servers import server_missing
    from tests.service.conftest import _pg_available, pg_database

    why = _pg_available()
    if why:
        server_missing(why)
    async with pg_database() as url, start_sms(tmp_path, standin, url) as sms:
        assert sms.service.db.dialect == "postgresql"
        await test_upload_assign_send_reply_stop(sms)
        await test_status_callbacks_duplicate_and_out_of_order(sms)
        sms.standin.received.clear()
        await test_a_texter_cannot_send_to_a_contact_not_assigned_to_them(sms)


async def test_next_skips_contacts_whose_evening_is_over(sms: Sms) -> None:
    la_hour = datetime.now(UTC).astimezone(ZoneInfo("America/Los_Angeles")).hour
    ny_hour = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")).hour
    start, end = la_hour, la_hour + 1  # open in Los Angeles, closed in New York (3 hours ahead)
    assert not start <= ny_hour < end
    two = (
        "first_name,last_name,cell,zip,Precinct\nBo,Li,+1 212 555 0143,10001,3\n"
        "Ana,Ruiz,(415) 555-2671,94103,12\nx,y,z,1,1\n"
    )
    cid = await campaign(sms, two, start_hour=start, end_hour=end)
    a, _ = await texter(sms, cid, "A")
    await sms.call("POST", f"campaigns/{cid}/assignments", a, json={"count": 2})
    status, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    assert status == 200 and nxt["contact"]["first_name"] == "Ana" and nxt["unsent"] == 2
    status, _ = await sms.call("POST", "send", a, json={"contact_id": nxt["contact"]["id"]})
    assert status == 201
    status, nxt = await sms.call("GET", f"campaigns/{cid}/next", a)
    assert nxt["contact"] is None and nxt["unsent"] == 1 and "outside their texting hours" in nxt["note"]
