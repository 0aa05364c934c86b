"""In real Chromium: a breached case appears in the panel's queue, a panel member
logs in, claims it, drafts a published finding and reopens it (``case.reopened``
lands on awasi.oversight.v1); a second member confirms the draft; the public
dashboard shows the finding and its charts
render as SVG with bars."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from awasi.events import topics
from awasi.identity import add_user
from awasi.settings import Settings
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from tests.support.kafka import read_topic
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    eventually,
    new_cid,
    pool_of,
    resolved,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    # pytest-asyncio flags pytest-playwright-asyncio's own session fixture (base_url).
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


@pytest.mark.browser
async def test_panel_member_works_a_breached_case_in_the_browser(
    settings: Settings, page: Page,
) -> None:
    clock = ManualClock(MONDAY_9)
    cid = new_cid()
    code = "AWS-BRWS01"
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        base = str(client.make_url("")).rstrip("/")
        await add_user(pool, username="pengawas", password="rahasia-123", role="panel",
                       display_name="Ibu Pengawas")
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.deadlines WHERE complaint_id = $1", cid),
            what="deadlines scheduled")
        clock.set(ACK_DUE + timedelta(hours=1))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.review_items WHERE complaint_id = $1", cid),
            what="the breach in the queue")

        await page.goto(f"{base}/panel?lang=en")
        assert page.url.startswith(f"{base}/panel/login?next=")
        await page.fill("#username", "pengawas")
        await page.fill("#password", "rahasia-123")
        await page.click("button[type=submit]")
        row = page.locator(f"#queue tr[data-code='{code}']")
        await expect(row).to_contain_text("acknowledgement deadline breached")
        await expect(page.locator("body")).to_contain_text("Ibu Pengawas")

        await row.get_by_role("link", name=code).click()
        await expect(page.locator("#timeline")).to_contain_text("Sent to the responsible agency")
        await page.get_by_role("button", name="Claim").click()
        await expect(page.locator("#claimed-by")).to_have_text("pengawas")

        await page.select_option("#outcome", "maladministration")
        await page.select_option("#maladministration_type", "undue_delay")
        await page.fill("#recommendation", "Terbitkan KTP dalam 3 hari kerja")
        await page.check("#published")
        await page.get_by_role("button", name="Record the draft").click()
        await expect(page.locator(".notice")).to_contain_text("draft recorded")
        # A draft until a second member confirms it; its author cannot.
        await expect(page.locator(".proposal")).to_contain_text("undue delay")
        assert await page.locator(".finding").count() == 0
        assert await page.get_by_role("button", name="Confirm").count() == 0

        # Reopening needs a resolution to send back (the lifecycle's rule).
        await send(settings, topics.ROUTER, resolved(cid, ACK_DUE + timedelta(hours=2)))
        await eventually(lambda: pool.fetchval(
            "SELECT status = 'resolved' FROM oversight.cases WHERE complaint_id = $1", cid),
            what="the case resolved")
        await page.fill("#reason", "Warga belum menerima KTP")
        await page.get_by_role("button", name="Reopen").click()
        await expect(page.locator(".notice")).to_contain_text("reopened")
        assert settings.kafka_bootstrap
        seen = await read_topic(settings.kafka_bootstrap, topics.OVERSIGHT,
                                until=lambda ms: any(m["type"] == "case.reopened" for m in ms))
        reopened = next(m for m in seen if m["type"] == "case.reopened")
        assert reopened["complaint_id"] == cid
        assert reopened["payload"]["reason"] == "Warga belum menerima KTP"

        # A second panel member confirms the draft.
        await page.context.clear_cookies()
        await add_user(pool, username="pengawas2", password="rahasia-456", role="panel",
                       display_name="Bapak Pengawas")
        await page.goto(f"{base}/panel/cases/{code}?lang=en")
        await page.fill("#username", "pengawas2")
        await page.fill("#password", "rahasia-456")
        await page.click("button[type=submit]")
        await page.get_by_role("button", name="Confirm").click()
        await expect(page.locator(".notice")).to_contain_text("confirmed")
        await expect(page.locator(".finding")).to_contain_text("undue delay")
        await expect(page.locator(".finding")).to_contain_text(
            "drafted by pengawas, confirmed by pengawas2")

        # The public dashboard, no login: the published finding and the charts.
        await page.context.clear_cookies()
        await page.goto(f"{base}/?lang=id")
        await expect(page.locator("#findings")).to_contain_text(
            "Terbitkan KTP dalam 3 hari kerja")
        await expect(page.locator("#findings")).to_contain_text("penundaan berlarut")
        assert await page.locator("figure.chart svg").count() == 6
        assert await page.locator("svg rect.bar").count() >= 2
        box = await page.locator("svg rect.bar").first.bounding_box()
        assert box is not None and box["width"] > 0
