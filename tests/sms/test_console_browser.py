"""The texting console in real headless Chromium (playwright driving /usr/bin/chromium): a texter
pastes a token holding ``sms:text``, sees the next contact and the rendered message, clicks Send
once, and the Twilio stand-in receives exactly that one message."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import Sms
from .test_api import campaign

CHROMIUM = os.environ.get("KP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic"]  # fmt: skip
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
]


async def test_a_texter_signs_in_sees_the_message_and_sends_it_with_one_click(sms: Sms) -> None:
    from playwright.async_api import async_playwright, expect

    cid = await campaign(sms)
    token, tid = await sms.token("Zoe", ("sms:text",))  # a texter's token: sms:text alone
    zoe = {"texter_id": tid, "name": "Zoe", "role": "texter"}
    status, _ = await sms.call("POST", f"campaigns/{cid}/texters", json=zoe)
    assert status == 200
    status, _ = await sms.call("POST", f"campaigns/{cid}/assignments", json={"texter_id": tid, "count": 1})
    assert status == 200

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            failed: list[str] = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.goto(sms.url("console"))
            await expect(page.locator("#signin")).to_be_visible()
            await page.fill("#token-input", token)
            await page.click("#signin-form button[type=submit]")

            await expect(page.locator("#main")).to_be_visible()
            await expect(page.locator("#who")).to_contain_text("Zoe")
            await expect(page.locator("#message")).to_have_text("Hi Ana, it's Zoe. Vote at precinct 12!")
            await expect(page.locator("#contact")).to_contain_text("Ana Ruiz · +14155552671")
            assert sms.standin.received == []  # showing the message sends nothing

            send = page.locator("#send")
            await expect(send).to_be_enabled()
            await send.click()
            await expect(page.locator("#status")).to_contain_text("Sent to Ana")
            # the batch of one is done: nothing more to send from this page
            await expect(page.locator("#contact")).to_contain_text("Nobody left to text")
            await expect(send).to_be_disabled()
            assert errors == [], errors
            # only the supervolunteers' review, which the console asks for and a texter is refused
            assert all(f.startswith("403 ") and f.endswith(f"/campaigns/{cid}/review") for f in failed), failed
        finally:
            await browser.close()

    [req] = sms.standin.received
    assert req["To"] == "+14155552671" and req["Body"] == "Hi Ana, it's Zoe. Vote at precinct 12!"
    status, convs = await sms.call("GET", f"campaigns/{cid}/conversations", token)
    assert status == 200 and [(c["first_name"], c["status"]) for c in convs["conversations"]] == [("Ana", "texted")]
