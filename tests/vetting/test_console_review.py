"""The console's vetting page in real headless Chromium: a reviewer whose token holds only
``vetting:review`` lands on the Plugins tab, sees the review queue with why each donor was flagged
(and no Admin, Jobs or Sessions tab), and approves one with a note; the decision is stored with
their name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.plugin_service import start_service

from .conftest import write_dataset

CHROMIUM = os.environ.get("KP_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"needs Chromium at {CHROMIUM}"),
]


async def test_a_reviewer_sees_the_queue_and_approves_a_flag(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    contributions, lda, block, _ = write_dataset(tmp_path / "in", donors=40)
    watchlists = [str(lda), {"source": str(block), "name": "blocklist"}]
    params = {"contributions": str(contributions), "watchlists": watchlists, "chunk_rows": 100, "notify": False}
    async with start_service(tmp_path, ["plugins.vetting:plugin"], {"vetting": {"cpu_processes": 0}}) as svc:
        await svc.run_job("vetting.run", params)
        reviewer = await svc.token("Vera Vetter", "vetting:review")
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{svc.base}/")
                await page.fill("#token-input", reviewer)
                await page.click("#sign-in")
                await expect(page.locator("#who")).to_contain_text("Vera Vetter")
                await expect(page.locator("#vetting-page")).to_be_visible()
                for tab in ("#nav-admin", "#nav-jobs", "#nav-sessions"):
                    await expect(page.locator(tab)).to_be_hidden()
                await expect(page.locator("#audit-page")).to_be_hidden()
                rows = page.locator("#vetting-queue tr")
                await expect(rows.first).to_be_visible()
                count = await rows.count()
                await expect(page.locator("#vetting-run")).to_contain_text(f"{count} to review")

                first = rows.first
                donor, subject = await first.get_attribute("data-donor"), await first.get_attribute("data-subject")
                await first.locator("button.approve").click()  # no note yet: refused in the page
                await expect(page.locator("#vetting-error")).to_contain_text("Write a note")
                await first.locator("input").fill("a namesake: another employer")
                await first.locator("button.approve").click()
                await expect(rows).to_have_count(count - 1)
                await page.select_option("#vetting-status", "decided")
                await expect(rows).to_have_count(1)
                await expect(rows.first).to_contain_text("cleared")
                await expect(rows.first).to_contain_text("Vera Vetter")
                assert errors == []
            finally:
                await browser.close()
        status, listed = await svc.call("GET", "/v1/plugins/vetting/decisions", reviewer)
        assert status == 200
        [decision] = listed["decisions"]
        assert (decision["donor_key"], decision["subject_key"], decision["status"]) == (donor, subject, "cleared")
        assert decision["reviewer"] == "Vera Vetter" and decision["reason"] == "a namesake: another employer"
