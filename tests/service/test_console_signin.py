"""Conductor in real headless Chromium: OIDC sign-in through the local issuer (authorization code
+ PKCE, the cookie, the CSRF header), a console limited to each user's roles, the admin's users
and tokens, sign-out."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from katopotato.oidc import OidcSettings, parse_group_scopes
from tests.oidc_issuer import CLIENT_ID, CLIENT_SECRET, LocalIssuer, User, serve_issuer

from .conftest import Running

CHROMIUM = os.environ.get("KP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(60),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
]
USERS = {
    "ada": User("ada", "ada@example.org", "Ada Transcriber", ["transcribers"]),
    "root": User("root", "root@example.org", "Root Admin", ["admins"]),
    "tess": User("tess", "tess@example.org", "Tess Texter", []),
}


@pytest.fixture
async def served(
    make_service: Callable[..., AbstractAsyncContextManager[Running]],
) -> AsyncIterator[tuple[Running, LocalIssuer]]:
    async with serve_issuer(LocalIssuer(users=dict(USERS))) as issuer:
        oidc = OidcSettings(
            issuer=issuer.issuer,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            group_scopes=parse_group_scopes(
                "transcribers=sessions:read,sessions:write,search;admins=*;texters=jobs:read"
            ),
            first_login_group="texters",
        )
        async with make_service(oidc=oidc) as r:
            yield r, issuer


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            yield await context.new_page()
            await context.close()
        finally:
            await browser.close()


async def sign_in_as(page: Any, r: Running, name: str) -> None:
    from playwright.async_api import expect

    await page.goto(r.url("/"))
    await expect(page.locator("#sso-link")).to_be_visible()
    await page.click("#sso-link")
    await page.click(f"button:has-text('{name}')")  # the local issuer's sign-in page
    await expect(page.locator("#sign-out")).to_be_visible()


async def test_sign_in_shows_only_what_each_role_may_use(served: tuple[Running, LocalIssuer], page: Any) -> None:
    from playwright.async_api import expect

    r, _issuer = served
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # a transcriber (and, on a first sign-in, a texter: jobs:read): sessions, search, the job list
    # but not starting jobs, no admin
    await sign_in_as(page, r, "Ada Transcriber")
    await expect(page.locator("#who")).to_contain_text("ada@example.org")
    await expect(page.locator("#who")).to_contain_text("jobs:read, search, sessions:read, sessions:write")
    await expect(page.locator("#new-session")).to_be_visible()
    await expect(page.locator("#search-form")).to_be_visible()
    assert await page.locator("#nav-admin").is_hidden()
    await page.click("#nav-jobs")
    await expect(page.locator("#jobs-sidebar")).to_be_visible()
    assert await page.locator("#new-job").is_hidden(), "no jobs:write"
    assert await page.evaluate("() => document.cookie") == "", "the sign-in cookie is HttpOnly"
    # a state-changing request from the page carries the CSRF token (stop a session that is not there)
    with_csrf = "{method: 'DELETE', headers: {'X-CSRF-Token': state.csrf}}"
    status = await page.evaluate(f"async () => (await fetch('/v1/sessions/none', {with_csrf})).status")
    assert status == 404
    forged = await page.evaluate("async () => (await fetch('/v1/sessions/none', {method: 'DELETE'})).status")
    assert forged == 403, "without the CSRF header the cookie alone changes nothing"
    await page.click("#sign-out")
    await expect(page.locator("#signin")).to_be_visible()
    assert await page.evaluate("async () => (await fetch('/v1/me')).status") == 401, "signed out for good"

    # a first sign-in with no group: the first-login group (texters: jobs:read) and nothing else
    await sign_in_as(page, r, "Tess Texter")
    await expect(page.locator("#jobs-sidebar")).to_be_visible()
    assert "#/jobs" in page.url
    assert await page.locator("#nav-sessions").is_hidden() and await page.locator("#new-job").is_hidden()
    await page.click("#sign-out")

    # an admin: everything, and the users and tokens
    await sign_in_as(page, r, "Root Admin")
    await page.click("#nav-admin")
    tess = page.locator("#users tr:has-text('tess@example.org')")
    await expect(tess.locator("input")).to_have_value("texters")
    await tess.locator("input").fill("texters, transcribers")  # the admin gives Tess another role
    await tess.locator("button:has-text('Save')").click()
    await expect(page.locator("#admin-error")).to_have_text("")
    for _ in range(50):  # the save is a PUT from the page: wait for it to land
        users = await r.service.identities.users()  # type: ignore[union-attr]
        if next(u for u in users if u.subject == "tess").assigned_groups != ("texters",):
            break
        await page.wait_for_timeout(100)
    assert next(u for u in users if u.subject == "tess").assigned_groups == ("texters", "transcribers")
    tokens = page.locator("#tokens")
    await expect(tokens).to_contain_text("Root Admin")
    assert await tokens.locator("tr:has-text('Ada Transcriber')").first.text_content() or ""
    assert "revoked" in (await tokens.locator("tr:has-text('Ada Transcriber')").first.text_content() or "")
    assert not errors, errors
