"""The citizen gets the agency's file: router -> intake through the real broker, the
status API and page (with the secret) linking to the router's signed link, nothing
on the status alone or the public report, the bot's and the e-mail's notice (a link
to the status page, never to the file), and the page in Chromium."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect
from pypdf import PdfWriter

from awasi.catalog import load_catalog
from awasi.db import create_pool
from awasi.events.envelope import Envelope
from awasi.events.payloads import TicketAttachmentAdded
from awasi.identity import add_user
from awasi.settings import Settings
from services.intake import notify
from services.intake.mail.texts import MailTexts
from services.intake.telegram.texts import Texts
from tests.support.intake import status_of, submit
from tests.support.router import PASSWORD, bearer, login, wait_ticket
from tests.support.services import running_service
from tests.support.wait import eventually

pytestmark = [
    # pytest-asyncio flags pytest-playwright-asyncio's own session fixture (base_url).
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


def one_page_pdf() -> bytes:
    w = PdfWriter()
    w.add_blank_page(300, 300)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


@contextlib.asynccontextmanager
async def both(settings: Settings) -> AsyncIterator[tuple[TestClient, TestClient, str]]:
    """The router and intake on real sockets; intake links to the router's address."""
    settings = settings.with_(rate_limit_per_minute=10_000)
    async with running_service("router", settings) as router:
        base = str(router.make_url("")).rstrip("/")
        async with running_service("intake", settings.with_(router_url=base)) as intake:
            pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
            try:
                await add_user(pool, username="mdn.insp", password=PASSWORD, role="staff",
                               agency="MDN-INSPEKTORAT")
            finally:
                await pool.close()
            yield router, intake, base


async def _attach(router: TestClient, code: str, data: bytes, name: str) -> dict[str, Any]:
    """Wait until the router has the complaint, then attach ``data`` as staff."""
    token = await login(router, "mdn.insp")
    t = await wait_ticket(router, token, code, status="assigned")
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/pdf")
    r = await router.post(f"/api/v1/tickets/{t['id']}/attachments", data=form,
                          headers=bearer(token))
    body = await r.json()
    assert r.status == 201, body
    return body  # type: ignore[no-any-return]


async def _entry(intake: TestClient, code: str, secret: str) -> dict[str, Any]:
    async def arrived() -> dict[str, Any] | None:
        s = await status_of(intake, code, secret)
        return next((e for e in s["timeline"] if e["kind"] == "ticket.attachment_added"),
                    None)

    return await eventually(arrived, within=30, what="the attachment on intake's timeline")


async def test_router_to_intake_end_to_end(settings: Settings) -> None:
    data = one_page_pdf()
    async with both(settings) as (router, intake, base):
        body = await submit(intake, privacy="named", visibility="public")
        code, secret = body["tracking_code"], body["secret"]
        a = await _attach(router, code, data, "Surat Jawaban.pdf")

        entry = await _entry(intake, code, secret)
        assert entry["attachment_id"] == a["id"] and entry["file_name"] == "Surat Jawaban.pdf"
        assert entry["size"] == len(data) and entry["file_kind"] == "pdf"
        assert entry["download_url"].startswith(f"{base}/attachments/{a['id']}?token=")
        # The link is the router's, signed, and gives the bytes.
        async with aiohttp.ClientSession() as http, http.get(entry["download_url"]) as r:
            assert r.status == 200 and await r.read() == data
            assert r.headers["Content-Disposition"] == 'attachment; filename="Surat Jawaban.pdf"'

        # The tracking code alone shows no conversation, so no link; nor does the
        # public report (its page or the API) or its public timeline.
        s = await status_of(intake, code)
        assert "timeline" not in s and a["id"] not in str(s)
        for path in (f"/reports/{code}", "/api/v1/reports?region=MDN", f"/status/{code}"):
            r = await intake.get(path)
            text = await r.text()
            assert r.status == 200, path
            assert a["id"] not in text and "/attachments/" not in text, path


def test_notices_link_to_the_status_page_not_the_file() -> None:
    env = Envelope.build(TicketAttachmentAdded(
        agency="MDN-PUPR", attachment_id="0b8e5a3c-2f1d-4c7e-9a6b-1d2e3f4a5b6c", kind="pdf",
        content_type="application/pdf", size=1234, file_name="surat.pdf"),
        complaint_id="5c1b7d2e-8f4a-4e61-9c0d-2a7b3e9f1d64", producer="router")
    news = notify.citizen_news(env)
    assert news == {"agency": "MDN-PUPR", "file_name": "surat.pdf"}
    catalog = load_catalog(Settings().catalog)
    bot = Texts(catalog, intake_url="https://lapor.example.id")
    text, markup = bot.notification("ticket.attachment_added", news, locale="id",
                                    code="MDN-AAAA-BBBB", region="MDN",
                                    complaint_id=env.complaint_id, may_dispute=False,
                                    may_rate=False)
    assert "mengirimi Anda berkas" in text and "surat.pdf" in text
    assert "https://lapor.example.id/status/MDN-AAAA-BBBB" in text
    assert "/attachments/" not in text and markup is None
    text, _ = bot.notification("ticket.attachment_added", news, locale="en",
                               code="MDN-AAAA-BBBB", region="MDN",
                               complaint_id=env.complaint_id, may_dispute=False,
                               may_rate=False)
    assert "sent you a file" in text
    mail = MailTexts(catalog, intake_url="https://lapor.example.id").compose(
        "ticket.attachment_added", news, locale="id", code="MDN-AAAA-BBBB", region="MDN",
        status_url="https://lapor.example.id/status/MDN-AAAA-BBBB")
    assert "mengirimi Anda berkas" in mail.subject
    assert "surat.pdf" in mail.body and "https://lapor.example.id/status/MDN-AAAA-BBBB" in mail.body
    assert "/attachments/" not in mail.body + mail.html


@pytest.mark.browser
async def test_status_page_shows_the_link_after_unlocking(page: Page, settings: Settings,
                                                          ) -> None:
    data = one_page_pdf()
    async with both(settings) as (router, intake, _):
        body = await submit(intake, privacy="anonymous")
        code, secret = body["tracking_code"], body["secret"]
        await _attach(router, code, data, "jawaban-dinas.pdf")
        await _entry(intake, code, secret)

        await page.goto(str(intake.make_url(f"/status/{code}")))
        await expect(page.get_by_test_id("attachment-link")).to_have_count(0)
        await page.locator("#unlock-secret").fill(secret)
        await page.locator("[data-testid=unlock] button[type=submit]").click()
        link = page.get_by_test_id("attachment-link")
        await expect(link).to_have_text("jawaban-dinas.pdf")
        await expect(page.get_by_test_id("timeline")).to_contain_text(
            "Instansi mengirimi Anda berkas")
        href = await link.get_attribute("href") or ""
        assert re.search(r"/attachments/[0-9a-f-]{36}\?token=", href)
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        assert download.suggested_filename == "jawaban-dinas.pdf"
        path = await download.path()
        assert path is not None and path.read_bytes() == data
