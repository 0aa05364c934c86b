"""In real Chromium: the two-person rule and conflicts of interest on the panel
console. One member drafts a finding and cannot confirm it; a second confirms it;
the second proposes a withdrawal that the first confirms; a member declares a
conflict with the case's agency in the console and is then recused in the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from awasi.events import topics
from awasi.identity import add_user
from awasi.settings import Settings
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    ACK_DUE,
    AGENCY,
    MONDAY_9,
    eventually,
    new_cid,
    pool_of,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


async def log_in(page: Page, url: str, username: str) -> None:
    await page.context.clear_cookies()
    await page.goto(url)
    await page.fill("#username", username)
    await page.fill("#password", "rahasia-123")
    await page.click("button[type=submit]")


@pytest.mark.browser
async def test_two_members_decide_and_a_conflict_recuses(settings: Settings,
                                                          page: Page) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    code = "AWS-BRWS02"
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        base = str(client.make_url("")).rstrip("/")
        for name in ("ani", "budi", "citra"):
            await add_user(pool, username=name, password="rahasia-123", role="panel")
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1", cid),
            what="deadlines scheduled")
        clock.set(ACK_DUE + timedelta(hours=1))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1", cid),
            what="the breach in the queue")
        case_url = f"{base}/panel/cases/{code}?lang=en"

        # Ani drafts; there is no Confirm button for her own draft.
        await log_in(page, case_url, "ani")
        await page.select_option("#outcome", "inconclusive")
        await page.fill("#recommendation", "Lengkapi berkas permohonan")
        await page.check("#published")
        await page.get_by_role("button", name="Record the draft").click()
        await expect(page.locator(".proposal")).to_contain_text("Draft finding")
        await expect(page.locator(".proposal")).to_contain_text("Proposed by ani")
        assert await page.get_by_role("button", name="Confirm").count() == 0
        await page.goto(f"{base}/panel?lang=en")
        await expect(page.locator(f"#queue tr[data-code='{code}']")).to_contain_text(
            "draft by ani awaits confirmation")
        await expect(page.locator("#drafts-list")).to_contain_text(code)

        # Budi confirms: the finding is in effect, the case leaves the queue.
        await log_in(page, case_url, "budi")
        await page.get_by_role("button", name="Confirm").click()
        await expect(page.locator(".notice")).to_contain_text("confirmed")
        await expect(page.locator(".finding")).to_contain_text(
            "drafted by ani, confirmed by budi")
        assert await pool.fetchval("SELECT count(*) FROM oversight.findings") == 1

        # Budi proposes a withdrawal; only Ani (not Budi) can confirm it.
        await page.locator("summary").click()
        fid = await pool.fetchval("SELECT id FROM oversight.findings")
        await page.fill(f"#withdraw-reason-{fid}", "Berkas ternyata sudah lengkap")
        await page.get_by_role("button", name="Propose the withdrawal").click()
        await expect(page.locator(".proposal")).to_contain_text("Proposed withdrawal")
        assert await page.get_by_role("button", name="Confirm").count() == 0
        await log_in(page, case_url, "ani")
        await page.get_by_role("button", name="Confirm").click()
        await expect(page.locator(".notice")).to_contain_text("confirmed")
        await expect(page.locator("body")).to_contain_text("No finding yet.")
        assert await pool.fetchval("SELECT count(*) FROM oversight.findings") == 0

        # A new breach on another case of the same agency; Citra declares a
        # conflict with the agency in the console and is recused from it.
        cid2, code2 = new_cid(), "AWS-BRWS03"
        await send(settings, topics.INTAKE, submitted(cid2, MONDAY_9, code2))
        await send(settings, topics.ROUTER, routed(cid2, MONDAY_9, ACK_DUE, None, code=code2))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1"
            " AND closed_at IS NULL", cid2), what="the second breach in the queue")
        await log_in(page, f"{base}/panel?lang=en", "citra")
        row = page.locator(f"#queue tr[data-code='{code2}']")
        await expect(row.get_by_role("button", name="Claim")).to_be_visible()
        await page.select_option("#conflict-agency", AGENCY)
        await page.fill("#conflict-reason", "Saya konsultan untuk OPD ini")
        await page.get_by_role("button", name="Declare the conflict").click()
        await expect(page.locator(".notice[role=status]")).to_contain_text(
            "Conflict of interest declared")
        await expect(row.locator(".recused")).to_contain_text(
            "citra (Saya konsultan untuk OPD ini)")
        assert await row.get_by_role("button", name="Claim").count() == 0
        await row.get_by_role("link", name=code2).click()
        await expect(page.locator("#recused")).to_contain_text("citra")
        assert await page.locator("#finding-form").count() == 0
        await page.goto(f"{base}/panel/cases/{code2}?lang=id")
        await expect(page.locator("body")).to_contain_text("konflik kepentingan")
