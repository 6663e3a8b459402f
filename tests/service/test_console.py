"""The web console in real headless Chromium (playwright driving /usr/bin/chromium): sign in, start
a session, watch its text arrive live, search it, jump to the hit, play a line, download an export."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .conftest import ADMIN_TOKEN, Running

CHROMIUM = os.environ.get("KP_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
]


@pytest.fixture
async def page(running: Running) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = await browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
            yield await context.new_page()
            await context.close()
        finally:
            await browser.close()


async def test_console_start_watch_search(page: object, running: Running, speech_url: str, tmp_path: Path) -> None:
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(running.url("/"))

    await page.fill("#token-input", "kp_wrong")
    await page.click("#sign-in")
    await expect(page.locator("#signin-error")).to_contain_text("not accepted")
    await page.fill("#token-input", ADMIN_TOKEN)
    await page.click("#sign-in")
    await expect(page.locator("#who")).to_contain_text("admin")

    await page.fill("#new-url", speech_url)
    await page.fill("#new-title", "Council from the console")
    await page.check("#new-realtime")
    await page.click("#start")
    await expect(page.locator("#s-title")).to_have_text("Council from the console")
    # the line being heard, in grey, before (and then beside) the committed text
    partial = page.locator("#transcript .line.partial")
    await expect(partial).to_be_visible(timeout=60_000)
    assert await partial.count() == 1, "one provisional line at most"
    assert (await partial.locator(".text").text_content() or "").strip()
    grey = await partial.evaluate("p => getComputedStyle(p).color")
    plain = await page.locator("#transcript").evaluate("b => getComputedStyle(b).color")
    assert grey != plain, "the provisional line is shown apart (grey)"
    assert await partial.evaluate("p => p === p.parentElement.lastElementChild"), "it is the last line"
    first_line = page.locator("#transcript .line.segment").first
    await expect(first_line).to_be_visible(timeout=60_000)
    status_when_first_text = await page.locator("#s-status").text_content()
    assert status_when_first_text == "running", "text arrived while the session was live"
    assert await page.locator("#s-health").get_attribute("class") == "dot ok"
    assert (await first_line.locator(".ts").text_content() or "").startswith("00:0")
    await expect(page.locator("#transcript")).to_contain_text("end (end_of_source", timeout=60_000)
    await expect(page.locator("#s-status")).to_have_text("completed")
    assert await partial.count() == 0, "at the end every provisional line was replaced by final text"
    transcript = (await page.locator("#transcript").text_content() or "").lower()
    assert "library" in transcript
    box = page.locator("#transcript")
    assert await box.evaluate("b => b.scrollHeight - b.scrollTop - b.clientHeight < 48"), "it followed the live end"
    await page.screenshot(path=str(tmp_path / "console-session.png"))

    async with page.expect_download() as info:
        await page.click("button.export[data-format=srt]")
    download = await info.value
    saved = tmp_path / "export.srt"
    await download.save_as(saved)
    assert "-->" in saved.read_text()

    await page.locator("#transcript .line.segment .ts.playable").first.click()
    await expect(page.locator("#player")).to_be_visible()
    assert (await page.locator("#player").get_attribute("src") or "").startswith("blob:")

    await page.fill("#search-q", "library")
    await page.click("#search-go")
    hit = page.locator("#results .hit").first
    await expect(hit).to_be_visible()
    assert await hit.locator(".snippet mark").count() >= 1
    await expect(hit).to_contain_text("Council from the console")
    await page.screenshot(path=str(tmp_path / "console-search.png"))
    start = float(await hit.get_attribute("data-start") or "0")
    await hit.click()
    target = page.locator("#transcript .line.target")
    await expect(target).to_be_visible(timeout=30_000)
    assert float(await target.get_attribute("data-start") or "-1") == pytest.approx(start, abs=0.01)
    assert "#/sessions/" in page.url and "t=" in page.url

    assert not errors, errors


async def test_console_jobs_start_watch_cancel_requeue(page: object, running: Running, tmp_path: Path) -> None:
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(running.url("/"))
    await page.fill("#token-input", ADMIN_TOKEN)
    await page.click("#sign-in")
    await expect(page.locator("#who")).to_contain_text("admin")
    await page.click("#nav-jobs")
    await expect(page.locator("#jobs-sidebar")).to_be_visible()
    assert await page.locator("#job-kind option[value='transcription.capture']").count() == 0

    # a job started from its parameter schema, its progress watched live, its result shown
    await page.select_option("#job-kind", "testing.echo")
    await expect(page.locator("#param-steps")).to_be_visible()
    assert await page.locator("#param-value").evaluate("e => e.tagName") == "TEXTAREA"  # any JSON
    await page.fill("#param-value", '{"said": "hello"}')
    await page.fill("#param-sleep_s", "4")
    await page.fill("#param-steps", "4")
    await page.click("#job-start")
    await expect(page.locator("#j-kind")).to_have_text("testing.echo")
    await expect(page.locator("#j-status")).to_have_text("running", timeout=20_000)
    await expect(page.locator("#j-progress-text")).to_contain_text("step 2 of 4", timeout=20_000)
    assert await page.locator("#j-result").text_content() == "—", "no result while it runs"
    await expect(page.locator("#j-status")).to_have_text("succeeded", timeout=20_000)
    await expect(page.locator("#j-result")).to_contain_text('"said": "hello"')
    assert await page.locator("#j-progress").evaluate("p => p.value === p.max")
    job_id = await page.locator("#j-id").text_content()
    await expect(page.locator(f"#jobs li[data-id='{job_id}'] .badge")).to_have_text("succeeded")
    await page.screenshot(path=str(tmp_path / "console-job.png"))

    # a bad parameter is refused with the API's message
    await page.fill("#param-sleep_s", "-3")
    await page.click("#job-start")
    await expect(page.locator("#job-error")).to_contain_text("sleep_s")

    # a long job cancelled, then requeued, then cancelled again
    await page.fill("#param-sleep_s", "120")
    await page.fill("#param-steps", "120")
    await page.click("#job-start")
    await expect(page.locator("#j-status")).to_have_text("running", timeout=20_000)
    await expect(page.locator("#j-cancel")).to_be_visible()
    await page.click("#j-cancel")
    await expect(page.locator("#j-status")).to_have_text("cancelled", timeout=20_000)
    await expect(page.locator("#j-requeue")).to_be_visible()
    await page.click("#j-requeue")
    await expect(page.locator("#j-status")).to_have_text("running", timeout=20_000)
    await expect(page.locator("#j-progress-text")).to_contain_text("step 1 of 120", timeout=20_000)
    await page.click("#j-cancel")
    await expect(page.locator("#j-status")).to_have_text("cancelled", timeout=20_000)

    # a failed job: its error, and the dead-letter filter
    await page.select_option("#job-kind", "core.transcribe_file")
    await page.fill("#param-source", "blob:uploads/missing.wav")
    await page.click("#job-start")
    await expect(page.locator("#j-status")).to_have_text("dead", timeout=30_000)
    await expect(page.locator("#j-error")).to_contain_text("missing.wav")
    await expect(page.locator("#j-requeue")).to_be_visible()
    await page.select_option("#jobs-status", "dead")
    await expect(page.locator("#jobs li")).to_have_count(1)
    await expect(page.locator("#jobs li .title")).to_have_text("core.transcribe_file")

    await page.click("#nav-sessions")
    await expect(page.locator("#sessions-sidebar")).to_be_visible()
    assert not errors, errors
