"""An admin adds or undoes an opt-out by hand (``PUT``/``DELETE opt-outs/{phone}``, ``sms:admin``),
audited in the same log as START/STOP, with who did it."""

from __future__ import annotations

from .conftest import Sms
from .test_api import campaign, texter


async def test_an_admin_opts_a_number_out_and_back_in_by_hand_audited(sms: Sms) -> None:
    cid = await campaign(sms)
    admin, admin_id = await sms.token("Alex (list admin)", ("sms:admin",))
    t, _ = await texter(sms, cid, "Zoe")
    await sms.call("POST", f"campaigns/{cid}/assignments", t, json={"count": 1})
    _, nxt = await sms.call("GET", f"campaigns/{cid}/next", t)
    assert nxt["contact"]["cell"] == "+14155552671"
    # any phone format; the person asked by e-mail
    status, r = await sms.call("PUT", "opt-outs/(415)%20555-2671", admin, json={"reason": "asked by e-mail"})
    assert status == 200 and r == {"phone": "+14155552671", "opted_out": True, "changed": True}, r
    status, r = await sms.call("PUT", "opt-outs/14155552671", admin)  # again: nothing changes, nothing logged
    assert status == 200 and r["changed"] is False
    # it holds at once: the contact the console showed is refused, and no longer offered
    status, r = await sms.call("POST", "send", t, json={"contact_id": nxt["contact"]["id"]})
    assert status == 409 and r["error"]["code"] == "opted_out" and sms.standin.received == []
    _, later = await sms.call("GET", f"campaigns/{cid}/next", t)
    assert later["contact"] is None

    # the person texts STOP later (already on the list: no second entry), then an admin undoes it by hand
    assert await sms.webhook("twilio/inbound", {"From": "+14155552671", "Body": "STOP", "MessageSid": "SMa"}) == 200
    status, r = await sms.call("DELETE", "opt-outs/+1%20415%20555%202671", admin, json={"reason": "added in error"})
    assert status == 200 and r == {"phone": "+14155552671", "opted_out": False, "changed": True}, r
    status, r = await sms.call("DELETE", "opt-outs/4155552671", admin)
    assert status == 200 and r["changed"] is False
    status, r = await sms.call("POST", "send", t, json={"contact_id": nxt["contact"]["id"]})
    assert status == 201 and len(sms.standin.received) == 1
    # the person opts out and back in by text: the same log, with no actor
    for body, sid in (("STOP", "SMb"), ("START", "SMc")):
        assert await sms.webhook("twilio/inbound", {"From": "+14155552671", "Body": body, "MessageSid": sid}) == 200

    status, log = await sms.call("GET", "opt-outs/4155552671/log", admin)
    assert status == 200 and log["phone"] == "+14155552671"
    rows = [(e["action"], e["source"], e["detail"], e["actor_id"], e["actor_name"]) for e in log["log"]]
    assert rows == [
        ("opt_out", "admin", "by hand: asked by e-mail", admin_id, "Alex (list admin)"),
        ("opt_in", "admin", "by hand: added in error", admin_id, "Alex (list admin)"),
        ("opt_out", "keyword", "SMb: STOP", "", ""),
        ("opt_in", "keyword", "SMc: START", "", ""),
    ]
    assert all(isinstance(e["at"], float) for e in log["log"])


async def test_only_the_admin_scope_changes_the_list_by_hand(sms: Sms) -> None:
    text, _ = await sms.token("Ana", ("sms:text",))
    for method, path in (("PUT", "opt-outs/4155552671"), ("DELETE", "opt-outs/4155552671"),
                         ("GET", "opt-outs/4155552671/log")):  # fmt: skip
        status, r = await sms.call(method, path, text)
        assert status == 403 and "sms:admin" in r["error"]["message"], (method, path, r)
    status, r = await sms.call("GET", "opt-outs/4155552671", text)
    assert status == 200 and r["opted_out"] is False  # nothing was changed
    # the service's admin token may do it; bad input is refused with the stable codes
    status, r = await sms.call("PUT", "opt-outs/not-a-number")
    assert status == 400 and r["error"]["code"] == "invalid_phone", r
    status, r = await sms.call("PUT", "opt-outs/4155552671", json={"reason": "x" * 501})
    assert status == 400 and r["error"]["code"] == "invalid_request", r
    status, r = await sms.call("PUT", "opt-outs/4155552671", json={"who": "me"})
    assert status == 400 and r["error"]["code"] == "invalid_request", r
    status, r = await sms.call("PUT", "opt-outs/4155552671", data=b"{", headers={"Content-Type": "application/json"})
    assert status == 400 and r["error"]["code"] == "invalid_json", r
    status, r = await sms.call("PUT", "opt-outs/4155552671")
    assert status == 200 and r["changed"] is True
