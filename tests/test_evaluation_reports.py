"""The periodic evaluation report: figures from oversight's own tables for a period
(with the previous period's), the page and the PDF from one template (the PDF's text
read back with pypdf), publication by the panel (archived bytes, SHA-256 on the
audit chain with the member) and that a published report never changes when a late
event arrives."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect
from pypdf import PdfReader

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import SurveyResponseSubmitted
from awasi.identity import add_user
from awasi.settings import Settings
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    WIB,
    acknowledged,
    bearer,
    eventually,
    feedback,
    login,
    pool_of,
    resolved,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]

NOW = datetime(2026, 10, 5, 10, 0, tzinfo=WIB)          # Q3 has ended, Q4 has not
IN_Q3 = datetime(2026, 8, 3, 9, 0, tzinfo=WIB)          # a Monday
IN_Q2 = datetime(2026, 5, 4, 9, 0, tzinfo=WIB)
UNIT = "MDN-PKM-PADANGBULAN"


async def complaint(settings: Settings, at: datetime, rating: int | None = 4) -> str:
    cid = str(uuid.uuid4())
    code = f"AWS-{cid[:6].upper()}"
    await send(settings, topics.INTAKE, submitted(cid, at, code))
    await send(settings, topics.ROUTER, routed(cid, at, at + timedelta(days=7),
                                               at + timedelta(days=14), code=code))
    await send(settings, topics.ROUTER, acknowledged(cid, at + timedelta(hours=2),
                                                     at + timedelta(days=14)))
    await send(settings, topics.ROUTER, resolved(cid, at + timedelta(hours=26)))
    if rating is not None:
        await send(settings, topics.INTAKE, feedback(cid, at + timedelta(hours=30), rating))
    return cid


async def survey(settings: Settings, at: datetime, values: dict[str, int]) -> None:
    env = Envelope.build(SurveyResponseSubmitted(
        unit=UNIT, agency="MDN-DINKES", region="MDN", answers=values, channel="web",
        submitted_at=at), complaint_id=str(uuid.uuid4()), producer="intake", occurred_at=at)
    await send(settings, topics.INTAKE, env)


def pdf_text(body: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(body)).pages]


async def test_report_figures_page_pdf_publish_and_immutability(settings: Settings) -> None:
    clock = ManualClock(NOW)
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        for i in range(6):
            await complaint(settings, IN_Q3 + timedelta(days=i))
        await complaint(settings, IN_Q2, rating=None)
        for _ in range(5):
            await survey(settings, IN_Q3, {f"U{i}": 3 for i in range(1, 10)})
        await survey(settings, IN_Q2, {f"U{i}": 2 for i in range(1, 10)})
        # Intake's and the router's topics arrive in any order: wait for both.
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FILTER (WHERE status IN ('resolved', 'closed')) = 7"
            " AND count(*) FILTER (WHERE rating = 4) = 6 FROM oversight.cases"), what="cases")
        await eventually(lambda: pool.fetchval(
            "SELECT sum(responses) = 6 FROM oversight.survey_daily"), what="survey")

        r = await client.get("/api/v1/reports/MDN/2026-Q3")
        assert r.status == 200, await r.text()
        data: dict[str, Any] = await r.json()
        c = data["complaints"]
        assert c["received"] == 6 and data["previous"]["received"] == 1
        assert data["changes"]["received"] == 5
        assert c["by_category"] == [{"code": "adminduk-ktp", "n": 6}]
        assert c["by_channel"] == [{"code": "api", "n": 6}]
        assert c["resolved"] == 6
        assert c["share_resolved_within_deadline"] == {"value": 1.0, "n": 6, "hidden": False}
        assert c["median_hours_to_acknowledge"]["value"] == 2.0
        assert c["median_hours_to_resolve"]["value"] == 26.0
        assert c["average_rating"]["value"] == 4.0 and c["ratings"]["4"] == 6
        assert data["previous"]["share_resolved_within_deadline"]["hidden"] is True
        total = data["satisfaction"]["total"]
        assert total["respondents"] == 5 and total["index"] == 75.0
        unit = next(u for u in data["satisfaction"]["units"] if u["code"] == UNIT)
        assert unit["elements"]["U1"] == 3.0 and unit["grade"] == "C"
        assert unit["change"] is None   # one answer in Q2: hidden, no change to show

        # The page, Bahasa Indonesia first.
        r = await client.get("/reports/MDN/2026-Q3")
        assert r.status == 200
        html = await r.text()
        assert 'lang="id"' in html and "Laporan evaluasi periodik" in html
        assert "IKM 75,00" in html and "Belum diterbitkan" in html

        # The PDF: the same figures; the city and period, and the page number, on
        # every page.
        r = await client.get("/reports/MDN/2026-Q3.pdf")
        assert r.status == 200 and r.content_type == "application/pdf"
        pages = pdf_text(await r.read())
        text = "\n".join(pages)
        assert "IKM 75,00" in text
        assert "Pada periode 2026-Q3, Kota Medan menerima 6 pengaduan" in text
        assert "100% pengaduan yang jatuh tempo diselesaikan tepat waktu" in text
        for n, page in enumerate(pages, start=1):
            assert "Kota Medan · 2026-Q3" in page
            assert f"Halaman {n} / {len(pages)}" in page
        # English on request.
        r = await client.get("/reports/MDN/2026-Q3.pdf", params={"lang": "en"})
        assert "IKM 75.00" in "\n".join(pdf_text(await r.read()))

        # Publication: only the panel, only an ended period, only once.
        r = await client.post("/api/v1/reports/MDN/2026-Q3/publish")
        assert r.status == 401
        token = await login(client, "panel-ani", "panel")
        r = await client.post("/api/v1/reports/MDN/2026-Q4/publish", headers=bearer(token))
        assert r.status == 409 and (await r.json())["error"]["code"] == "period_open"
        r = await client.post("/api/v1/reports/MDN/2026-Q3/publish", headers=bearer(token))
        assert r.status == 201, await r.text()
        published = await r.json()
        assert published["published_by"] == "panel-ani"
        entry = await pool.fetchrow(
            "SELECT event_type, actor, payload FROM oversight.timeline WHERE seq = $1",
            published["chain_seq"])
        assert entry["event_type"] == "report.published" and entry["actor"] == "panel-ani"
        r = await client.post("/api/v1/reports/MDN/2026-Q3/publish", headers=bearer(token))
        assert r.status == 409
        r = await client.get("/api/v1/audit/verify")
        assert (await r.json())["ok"] is True

        pdf_before = await (await client.get("/reports/MDN/2026-Q3.pdf")).read()
        html_before = await (await client.get("/reports/MDN/2026-Q3")).read()
        assert hashlib.sha256(pdf_before).hexdigest() == published["files"]["id.pdf"]
        assert hashlib.sha256(html_before).hexdigest() == published["files"]["id.html"]
        assert "panel-ani" not in html_before.decode()  # the chain names the member
        assert "Diterbitkan oleh tim pengawas" in html_before.decode()

        # A late event about Q3 arrives: the live figures move, the report does not.
        await complaint(settings, IN_Q3 + timedelta(days=20))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FILTER (WHERE status IN ('resolved', 'closed')) = 8"
            " AND count(*) FILTER (WHERE rating = 4) = 7 FROM oversight.cases"),
            what="late case")
        r = await client.get("/api/v1/reports/MDN/2026-Q3")
        assert (await r.json())["complaints"]["received"] == 7
        r = await client.get("/reports/MDN/2026-Q3.pdf")
        assert r.headers["X-Awasi-Published"] == "true"
        assert await r.read() == pdf_before
        assert await (await client.get("/reports/MDN/2026-Q3")).read() == html_before
        # Not even the database lets the archive change.
        with pytest.raises(Exception, match="never changes"):
            await pool.execute("UPDATE oversight.published_reports SET pdf = ''::bytea")


async def test_a_period_with_many_findings_counts_them_all_and_lists_them_in_pages(
        settings: Settings) -> None:
    """The report counts every confirmed finding per agency and outcome, lists the
    first few published ones, and links to the whole list, paged; an unpublished
    finding is counted, never shown."""
    clock = ManualClock(NOW)
    async with running_app(create_app(settings, clock=clock)) as client:
        pool = pool_of(client)
        cids = [await complaint(settings, IN_Q3 + timedelta(days=i)) for i in range(3)]
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) = 3 FROM oversight.cases WHERE tracking_code IS NOT NULL"),
            what="cases")
        codes = [await pool.fetchval(
            "SELECT tracking_code FROM oversight.cases WHERE complaint_id = $1", c)
            for c in cids]
        ani = bearer(await login(client, "panel-ani", "panel"))
        budi = bearer(await login(client, "panel-budi", "panel"))
        # Two findings through the panel's two-person rule: one published, one not.
        for code, published in ((codes[0], True), (codes[1], False)):
            r = await client.post(f"/api/v1/cases/{code}/findings", headers=ani, json={
                "outcome": "maladministration", "maladministration_type": "undue_delay",
                "recommendation": f"Rekomendasi {'publik' if published else 'internal'}",
                "published": published})
            assert r.status == 201, await r.text()
            r = await client.post(f"/api/v1/findings/{(await r.json())['id']}/confirm",
                                  headers=budi)
            assert r.status in (200, 201), await r.text()
        # A long period: 140 more published findings on the third case (the volume;
        # the panel's path is the two above).
        await pool.execute(
            "INSERT INTO oversight.findings (id, complaint_id, event_id, agency, region,"
            " outcome, recommendation, published, recorded_by, recorded_at, confirmed_by)"
            " SELECT 1000 + i, complaint_id, gen_random_uuid(), agency, region,"
            "   CASE WHEN i % 2 = 0 THEN 'no_maladministration' ELSE 'inconclusive' END,"
            "   'Temuan ' || i, true, 'ani', $2::timestamptz + i * interval '1 hour', 'budi'"
            " FROM oversight.cases, generate_series(1, 140) AS i WHERE complaint_id = $1",
            cids[2], NOW - timedelta(days=4))

        data = await (await client.get("/api/v1/reports/MDN/2026-Q4")).json()
        c = data["complaints"]
        assert c["finding_outcomes"] == {"no_maladministration": 70, "maladministration": 2,
                                         "inconclusive": 70}
        assert c["findings_published"] == 141
        assert c["findings_by_agency"] == [{
            "agency": "MDN-DISDUKCAPIL", "total": 142, "published": 141,
            "outcomes": {"no_maladministration": 70, "maladministration": 2,
                         "inconclusive": 70}}]
        listed = data["findings"]
        assert len(listed) == 50 and data["findings_list"] == "/reports/MDN/2026-Q4/findings"
        assert [f["recommendation"] for f in listed[:2]] == ["Temuan 1", "Temuan 2"]
        html = await (await client.get("/reports/MDN/2026-Q4")).text()
        assert "50 temuan pertama dari 141 temuan" in html
        assert 'href="/reports/MDN/2026-Q4/findings"' in html
        assert html.count("<tr data-finding=") == 50
        assert "Rekomendasi internal" not in html

        # The whole list, a keyset page at a time: every published finding once, in
        # date order, the unpublished one never.
        seen: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": "40"}
        pages = 0
        while True:
            r = await client.get("/api/v1/reports/MDN/2026-Q4/findings", params=params)
            assert r.status == 200, await r.text()
            page = await r.json()
            assert page["total"] == 141
            seen += page["items"]
            pages += 1
            if page["next"] is None:
                break
            params["after"] = page["next"]
        assert pages == 4 and len(seen) == 141 and len({f["id"] for f in seen}) == 141
        assert [(f["recorded_at"], f["id"]) for f in seen] == sorted(
            (f["recorded_at"], f["id"]) for f in seen)
        assert "Rekomendasi publik" in {f["recommendation"] for f in seen}
        assert "Rekomendasi internal" not in {f["recommendation"] for f in seen}
        assert seen[:50] == listed

        # The page: 100 a page, a next link, both languages.
        r = await client.get("/reports/MDN/2026-Q4/findings")
        html = await r.text()
        assert r.status == 200 and 'lang="id"' in html and "141 temuan" in html
        assert html.count("<tr data-finding=") == 100
        next_link = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
        r = await client.get("/reports/MDN/2026-Q4/findings" + next_link.replace("&amp;", "&"))
        html = await r.text()
        assert html.count("<tr data-finding=") == 41 and 'rel="next"' not in html
        r = await client.get("/reports/MDN/2026-Q4/findings", params={"lang": "en"})
        assert "141 published findings, in date order." in await r.text()

        # Bad paging input: the JSON error naming the parameter.
        for query, field in (({"after": "bm90LWEtdG9rZW4"}, "after"), ({"limit": "0"}, "limit"),
                             ({"limit": "501"}, "limit"), ({"limit": "x"}, "limit")):
            r = await client.get("/api/v1/reports/MDN/2026-Q4/findings", params=query)
            assert r.status == 422, query
            assert (await r.json())["error"]["details"]["fields"][0]["field"] == field
        assert (await client.get("/reports/XXX/2026-Q4/findings")).status == 404


async def test_report_bad_addresses(settings: Settings) -> None:
    async with running_app(create_app(settings, clock=ManualClock(NOW))) as client:
        assert (await client.get("/reports/XXX/2026-Q3")).status == 404
        assert (await client.get("/reports/MDN/2026-Q9")).status == 404
        r = await client.get("/api/v1/reports/MDN/2026-Q3", params={"agency": "SRG-DINKES"})
        assert r.status == 422
        assert (await r.json())["error"]["details"]["fields"][0]["field"] == "agency"
        r = await client.get("/reports/MDN/2026-Q3", params={"agency": "MDN-DINKES"})
        assert r.status == 200 and "Dinas Kesehatan" in await r.text()


def test_now_is_after_q3() -> None:
    assert NOW.astimezone(UTC) > datetime(2026, 9, 30, 17, 0, tzinfo=UTC)


@pytest.mark.browser
async def test_panel_publishes_and_recommends_in_the_browser_without_javascript(
        settings: Settings, browser: Browser) -> None:
    async with running_app(create_app(settings, clock=ManualClock(NOW))) as client:
        await add_user(pool_of(client), username="pengawas", password="rahasia-123",
                       role="panel")
        base = str(client.make_url("")).rstrip("/")
        context = await browser.new_context(java_script_enabled=False, locale="id-ID",
                                            extra_http_headers={"Accept-Language": "id"})
        try:
            page = await context.new_page()
            await page.goto(f"{base}/panel/evaluation")
            assert "/panel/login" in page.url
            await page.fill("#username", "pengawas")
            await page.fill("#password", "rahasia-123")
            await page.click("form button[type=submit]")
            await expect(page.get_by_role("heading", level=2).first).to_have_text(
                "Terbitkan laporan suatu periode")
            # Q4 has not ended on the oversight clock: refused, with the reason.
            await page.fill("#p-period", "2026-Q4")
            await page.get_by_role("button", name="Terbitkan").click()
            await expect(page.get_by_role("alert")).to_contain_text("belum berakhir")
            await page.fill("#p-period", "2026-Q3")
            await page.get_by_role("button", name="Terbitkan").click()
            await expect(page.get_by_role("status")).to_contain_text("diterbitkan")
            shown = await page.locator("#published ~ table code").first.inner_text()
            # A recommendation from the report.
            await page.select_option("#r-agency", "MDN-DINKES")
            await page.fill("#r-what", "Tambah petugas loket pada jam sibuk pagi hari.")
            await page.fill("#r-why", "Waktu penyelesaian (U3) terendah pada 2026-Q3.")
            await page.fill("#r-due", "2026-12-31")
            await page.select_option("#r-kind", "report")
            await page.fill("#r-ref", "2026-Q3")
            await page.get_by_role("button", name="Kirim rekomendasi").click()
            await expect(page.get_by_role("status")).to_contain_text("telah dikirim")
        finally:
            await context.close()
        pdf = await (await client.get("/reports/MDN/2026-Q3.pdf")).read()
        assert hashlib.sha256(pdf).hexdigest() == shown
        r = await client.get("/api/v1/recommendations", params={"agency": "MDN-DINKES"})
        items = (await r.json())["items"]
        assert [(i["what"], i["source"]) for i in items] == [
            ("Tambah petugas loket pada jam sibuk pagi hari.",
             {"kind": "report", "ref": "2026-Q3"})]
