"""The citizen's path in real Chromium: fill the form in Bahasa Indonesia, submit,
land on the tracking page, and see the status change after the router's event."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from awasi.events import topics
from awasi.settings import Settings
from tests.support.intake import resolved_env, routed_env
from tests.support.kafka import publish
from tests.support.services import running_service

pytestmark = [
    # pytest-asyncio flags pytest-playwright-asyncio's own session fixture (base_url).
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


async def _complaint_id(settings: Settings, code: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        return str(await conn.fetchval(
            "SELECT id FROM intake.complaints WHERE tracking_code = $1", code))
    finally:
        await conn.close()


@pytest.mark.browser
async def test_report_and_follow_in_chromium(page: Page, settings: Settings) -> None:
    async with running_service("intake", settings.with_(rate_limit_per_minute=1000)) as client:
        base = str(client.make_url("/"))
        await page.set_viewport_size({"width": 390, "height": 844})  # a phone
        await page.goto(base)
        assert await page.locator("html").get_attribute("lang") == "id"
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Laporkan masalah layanan publik")

        # A first try with too short a description: the error is next to the field,
        # and nothing typed is lost.
        await page.get_by_label("Kota").select_option("MDN")
        await page.get_by_label("Kategori").select_option("jalan-rusak")
        await page.get_by_label("Apa yang terjadi?").fill("Lubang")
        await page.get_by_label("Lokasi").fill("Jl. Gatot Subroto, Medan")
        await page.get_by_role("radio", name=re.compile("^Rahasia")).check()
        await page.get_by_label("Nama", exact=True).fill("Budi Santoso")
        await page.get_by_role("button", name="Kirim laporan").click()
        await expect(page.locator("#description-error")).to_contain_text("10 sampai 4.000")
        await expect(page.get_by_label("Lokasi")).to_have_value("Jl. Gatot Subroto, Medan")
        await expect(page.get_by_label("Nama", exact=True)).to_have_value("Budi Santoso")

        await page.get_by_label("Apa yang terjadi?").fill(
            "Lubang besar di depan SD Negeri 060, sudah dua minggu tidak diperbaiki.")
        await page.get_by_role("button", name="Kirim laporan").click()
        await page.wait_for_url(re.compile(r"/status/MDN-[0-9A-Z]{4}-[0-9A-Z]{4}$"))
        code = await page.get_by_test_id("tracking-code").inner_text()
        assert re.fullmatch(r"MDN-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
        await expect(page.get_by_test_id("secret")).to_have_text(
            re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$"))
        await expect(page.get_by_test_id("status")).to_have_text("Diterima")

        # The router routes it: the page shows the agency after a reload.
        complaint_id = await _complaint_id(settings, code)
        uuid.UUID(complaint_id)
        bootstrap = settings.kafka_bootstrap or ""
        await publish(bootstrap, topics.ROUTER,
                      routed_env(complaint_id, code, "MDN-PUPR").to_bytes(),
                      key=complaint_id.encode())
        for _ in range(100):
            await page.reload()
            if await page.get_by_test_id("status").get_attribute("data-status") == "routed":
                break
            await page.wait_for_timeout(150)
        await expect(page.get_by_test_id("status")).to_have_text(
            "Diteruskan ke perangkat daerah")
        await expect(page.get_by_test_id("agency")).to_contain_text("MDN-PUPR")

        # Resolved: the rating form appears; rate it in the browser.
        await publish(bootstrap, topics.ROUTER, resolved_env(complaint_id).to_bytes(),
                      key=complaint_id.encode())
        for _ in range(100):
            await page.reload()
            if await page.get_by_test_id("status").get_attribute("data-status") == "resolved":
                break
            await page.wait_for_timeout(150)
        await page.get_by_label("4", exact=True).check()
        await page.get_by_role("button", name="Kirim penilaian").click()
        await expect(page.get_by_test_id("timeline")).to_contain_text("Anda memberi penilaian")

        # English by choice.
        await page.get_by_role("link", name="English").click()
        await expect(page.get_by_test_id("status")).to_have_text("Resolved by the agency")
