"""In real Chromium: a staff member logs in on the agency desk, finds the new complaint
at the top of the queue, asks the citizen a question (the clock pauses), the answer
arrives as ``complaint.info_added``, and the staff member resolves the ticket."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from awasi.events import topics
from awasi.events.payloads import ComplaintInfoAdded
from awasi.settings import Settings
from tests.support.kafka import read_topic
from tests.support.router import (
    PASSWORD,
    create_users,
    event,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service
from tests.support.wait import eventually

pytestmark = [
    # pytest-asyncio flags pytest-playwright-asyncio's own session fixture (base_url).
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


@pytest.mark.browser
async def test_staff_member_works_a_complaint_in_the_browser(
    router_settings: Settings, page: Page,  # noqa: F811 - the fixture
) -> None:
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    older = submitted("MDN", "jalan-rusak", "Keluhan lama tentang trotoar.")
    new = submitted("MDN", "jalan-rusak", "Lubang besar di Jl. Brigjend Katamso, sudah dua minggu.",
                    title="Jalan berlubang di Katamso", privacy="confidential")
    code = new.payload["tracking_code"]
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        token = await login(client, "mdn.pupr")
        await send(bootstrap, older)
        await wait_ticket(client, token, older.payload["tracking_code"])
        await send(bootstrap, new)
        await wait_ticket(client, token, code)
        base = str(client.make_url("")).rstrip("/")

        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await page.goto(f"{base}/?lang=id")
        assert "/login" in page.url
        await expect(page.locator("h1")).to_have_text("Masuk")
        await page.fill("#username", "mdn.pupr")
        await page.fill("#password", PASSWORD)
        await page.click("form[action='/login'] button[type=submit]")

        first = page.locator("table.queue tbody tr").first
        await expect(first).to_contain_text(code)
        await expect(first).to_contain_text("Baru")
        await first.locator("a").click()
        await expect(page.locator("h1")).to_contain_text(code)
        await expect(page.locator("#reporter")).to_contain_text("Laporan rahasia")

        await page.fill("#question", "Di depan nomor berapa lubangnya?")
        await page.click("form[action$='/request-info'] button")
        await expect(page.locator("#status")).to_have_text("Menunggu jawaban warga")
        await expect(page.locator("#timeline")).to_contain_text("Di depan nomor berapa")

        await send(bootstrap, event(ComplaintInfoAdded(message="Depan rumah nomor 45."),
                                    new.complaint_id, "intake"))
        async def answer_shown() -> bool:
            # The answer and the resumed status on one reload: a reload between the
            # router's two steps showed the answer with the old status (a CI flake).
            await page.reload()
            return ("Depan rumah nomor 45" in await page.locator("#timeline").inner_text()
                    and await page.locator("#status").inner_text() == "Baru")

        await eventually(answer_shown, within=20, what="the citizen's answer on the page",
                         interval=0.2)
        await expect(page.locator("#status")).to_have_text("Baru")
        await expect(page.locator("#timeline")).to_contain_text("Waktu berjalan kembali")

        await page.fill("#note", "Lubang sudah ditambal oleh tim UPT Jalan.")
        await page.click("form[action$='/resolve'] button")
        await expect(page.locator("#status")).to_have_text("Selesai")
        await expect(page.locator("#timeline")).to_contain_text("sudah ditambal")

        # Switch to English: the same page, translated.
        await page.click("a[hreflang=en]")
        await expect(page.locator("#status")).to_have_text("Resolved")

        resolved = await wait_ticket(client, token, code, status="resolved")
        assert resolved["deadlines"]["dispute_until"]
        messages = await read_topic(
            bootstrap, topics.ROUTER,
            until=lambda ms: any(m.get("type") == "ticket.resolved" for m in ms))
        mine = [m["type"] for m in messages if m["complaint_id"] == new.complaint_id]
        assert mine == ["complaint.routed", "ticket.info_requested", "ticket.clock_resumed",
                        "ticket.resolved"]


@pytest.mark.browser
async def test_queue_page_tells_of_a_new_complaint_without_a_reload(
    router_settings: Settings, page: Page,  # noqa: F811 - the fixture
) -> None:
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    older = submitted("MDN", "jalan-rusak", "Trotoar ambles di depan pasar.")
    new = submitted("MDN", "jalan-rusak", "Lampu lalu lintas mati di simpang empat.")
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        token = await login(client, "mdn.pupr")
        await send(bootstrap, older)
        await wait_ticket(client, token, older.payload["tracking_code"])
        base = str(client.make_url("")).rstrip("/")

        await page.goto(f"{base}/login?lang=id")
        await page.fill("#username", "mdn.pupr")
        await page.fill("#password", PASSWORD)
        await page.click("form[action='/login'] button[type=submit]")
        await expect(page.locator("table.queue tbody tr").first).to_contain_text(
            older.payload["tracking_code"])
        notice = page.locator("#queue-live")
        await expect(notice).to_be_hidden()
        await page.wait_for_timeout(500)  # the script's long-poll is waiting
        await expect(notice).to_be_hidden()  # nothing changed: no notice

        # The complaint reaches the agency while the page is open: the page says so.
        await send(bootstrap, new)
        await expect(notice).to_be_visible(timeout=15000)
        await expect(notice).to_contain_text("Antrean berubah")
        await notice.locator("a").click()
        await expect(page.locator("table.queue tbody tr").first).to_contain_text(
            new.payload["tracking_code"])
        await expect(page.locator("#queue-live")).to_be_hidden()
