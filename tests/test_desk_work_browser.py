"""In real Chromium, on the desk: a head searches the queue, pages through it with
"next page", ticks tickets and assigns them at once (per-ticket results), assigns
one on its page; a staff member takes an unassigned ticket and writes an internal
note. Also the same through plain forms with a 422 for a bad page token."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from awasi.db import create_pool
from awasi.identity import add_user
from awasi.settings import Settings
from tests.support.router import (
    PASSWORD,
    create_users,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service

pytestmark = [
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


async def _log_in(page: Page, base: str, username: str) -> None:
    await page.context.clear_cookies()
    await page.goto(f"{base}/login?lang=id")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")


@pytest.mark.browser
async def test_head_assigns_and_staff_take_tickets_in_the_browser(
    router_settings: Settings, page: Page,  # noqa: F811 - the fixture
) -> None:
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    texts = ["Jalan berlubang di Jl. Juanda.", "Jembatan retak di Belawan.",
             "Jalanan banjir setelah hujan.", "Trotoar rusak di Jl. Pemuda."]
    envs = [submitted("MDN", "jalan-rusak", t) for t in texts]
    codes = [e.payload["tracking_code"] for e in envs]
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
        try:
            await add_user(pool, username="mdn.pupr.head", password=PASSWORD, role="head",
                           agency="MDN-PUPR")
        finally:
            await pool.close()
        token = await login(client, "mdn.pupr")
        for env in envs:
            await send(bootstrap, env)
            await wait_ticket(client, token, env.payload["tracking_code"])
        base = str(client.make_url("")).rstrip("/")

        # The head searches: "jal" finds the two "jalan..." complaints, newest first.
        await _log_in(page, base, "mdn.pupr.head")
        await page.fill("#f-q", "jal")
        await page.click("form.filters button[type=submit]")
        rows = page.locator("table.queue tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text(codes[2])
        await expect(rows.nth(1)).to_contain_text(codes[0])
        await expect(page.locator("[data-testid=pager]")).to_contain_text("2 tiket")

        # Keyset pages: two at a time through "next page", no ticket twice.
        await page.goto(f"{base}/?limit=2")
        await expect(rows).to_have_count(2)
        first = await rows.all_inner_texts()
        await expect(page.locator("[data-testid=pager]")).to_contain_text("4 tiket")
        await page.click("[data-testid=next-page]")
        await expect(rows).to_have_count(2)
        second = await rows.all_inner_texts()
        await expect(page.locator("[data-testid=next-page]")).to_have_count(0)
        shown = " ".join(first + second)
        assert all(shown.count(c) == 1 for c in codes)
        await page.goto(f"{base}/")

        # Tick two and assign them to mdn.pupr at once.
        for code in (codes[3], codes[1]):
            await page.locator(f"tr:has-text('{code}') input[type=checkbox]").check()
        await page.select_option("#bulk-action", "assign")
        await page.select_option("#bulk-username", "mdn.pupr")
        await page.click("form#bulk button[type=submit]")
        await expect(page.locator("h1")).to_contain_text("2 dari 2 berhasil")
        await expect(page.locator("#bulk-results li[data-ok=true]")).to_have_count(2)

        # One more on its own page, from the dropdown.
        await page.goto(f"{base}/?lang=id")
        await page.locator(f"tr:has-text('{codes[0]}') a").click()
        await page.select_option("#assign-username", "mdn.pupr.head")
        await page.click("form.assign button[type=submit]")
        await expect(page.locator("#assignee")).to_have_text("mdn.pupr.head")
        await expect(page.locator("#timeline")).to_contain_text("Petugas diganti")

        # A staff member: "assigned to me" shows the two; they take the last free one.
        await _log_in(page, base, "mdn.pupr")
        await page.select_option("#f-assignee", "me")
        await page.click("form.filters button[type=submit]")
        await expect(rows).to_have_count(2)
        await page.select_option("#f-assignee", "none")
        await page.click("form.filters button[type=submit]")
        await expect(rows).to_have_count(1)
        await rows.first.locator("a").click()
        await page.click("form.assign button[type=submit]")  # "Ambil tiket ini"
        await expect(page.locator("#assignee")).to_have_text("mdn.pupr")
        # On a ticket someone else has, staff get no assign form at all.
        await page.goto(f"{base}/?assignee=&q={codes[0]}")
        await rows.first.locator("a").click()
        await expect(page.locator("form.assign")).to_have_count(0)

        # An internal note, on the page only.
        await page.fill("#note-body", "Koordinasi dengan UPT Jalan minggu ini.")
        await page.click("form[action$='/notes'] button")
        await expect(page.locator("#notes")).to_contain_text("Koordinasi dengan UPT Jalan")
        await expect(page.locator("#notes")).to_contain_text("mdn.pupr")

        # The queue's next-page link, through a bad token first: a friendly 422 page.
        await page.goto(f"{base}/?after=not-a-token")
        assert re.search(r"422|tidak valid|Periksa", await page.content())
