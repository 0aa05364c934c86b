"""Recommendations: the panel writes one to an agency on oversight; the router
learns of it through oversight's topic (the real broker); the agency head answers on
the router (action plan, progress, done); oversight learns the answers through the
router's topic. Public with the whole history; on the audit chain; in the report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import RecommendationAnswered
from awasi.identity import add_user
from awasi.settings import Settings
from awasi.web import keys as web_keys
from services.oversight.app import create_app as create_oversight
from services.oversight.clock import ManualClock
from tests.support.kafka import publish, read_topic
from tests.support.oversight import MONDAY_9, bearer, eventually, login, pool_of
from tests.support.services import running_app, running_service

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
    pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods"),
]


async def test_recommendation_round_trip_through_both_topics(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    async with running_app(create_oversight(settings, clock=clock)) as oversight, \
            running_service("router", settings) as router:
        panel = await login(oversight, "panel-budi", "panel")
        oversight.session.cookie_jar.clear()  # the bearer token only, from here on
        body: dict[str, Any] = {
            "agency": "MDN-DINKES",
            "what": "Pasang papan informasi standar pelayanan dan tarif di setiap puskesmas.",
            "why": "Unsur biaya/tarif (U4) di Puskesmas Padang Bulan paling rendah.",
            "due_date": (MONDAY_9 + timedelta(days=60)).date().isoformat(),
            "source_kind": "report", "source_ref": "2026-Q3"}
        # Bad input first: 422 naming the field, nothing stored.
        for bad, field in (({**body, "agency": "MDN-NOPE"}, "agency"),
                           ({**body, "due_date": "2026-01-01"}, "due_date"),
                           ({**body, "source_kind": "finding", "source_ref": "999"},
                            "source_ref"),
                           ({k: v for k, v in body.items() if k != "why"}, "why")):
            r = await oversight.post("/api/v1/recommendations", json=bad,
                                     headers=bearer(panel))
            assert r.status == 422, await r.text()
            assert field in [f["field"] for f in (await r.json())["error"]["details"]["fields"]]
        r = await oversight.post("/api/v1/recommendations", json=body)
        assert r.status == 401
        r = await oversight.post("/api/v1/recommendations", json=body, headers=bearer(panel))
        assert r.status == 201, await r.text()
        rec = await r.json()
        assert rec["status"] == "open" and rec["history"][0]["by"] == "panel"
        rid = rec["id"]

        # The router learns of it from oversight's topic.
        pool = router.server.app[web_keys.POOL]
        await add_user(pool, username="kadis-mdn", password="rahasia-123", role="head",
                       agency="MDN-DINKES")
        await add_user(pool, username="staf-mdn", password="rahasia-123", role="staff",
                       agency="MDN-DINKES")
        await add_user(pool, username="kadis-pupr", password="rahasia-123", role="head",
                       agency="MDN-PUPR")

        async def token(name: str) -> str:
            r = await router.post("/api/v1/auth/login",
                                  json={"username": name, "password": "rahasia-123"})
            return str((await r.json())["token"])

        head, staff, other = (await token("kadis-mdn"), await token("staf-mdn"),
                              await token("kadis-pupr"))

        async def on_desk() -> list[dict[str, Any]]:
            r = await router.get("/api/v1/recommendations", headers=bearer(staff))
            return list((await r.json())["items"])

        items = await eventually(on_desk, what="recommendation on the desk")
        assert items[0]["id"] == rid and items[0]["what"] == body["what"]
        r = await router.get("/api/v1/recommendations", headers=bearer(other))
        assert (await r.json())["items"] == []

        # Only the head of the agency answers.
        url = f"/api/v1/recommendations/{rid}/answer"
        plan = {"status": "planned", "note": "Papan dipasang di 39 puskesmas sebelum Desember."}
        r = await router.post(url, json=plan, headers=bearer(staff))
        assert r.status == 403
        r = await router.post(url, json=plan, headers=bearer(other))
        assert r.status == 404
        r = await router.post(url, json={"status": "declined", "note": "tidak"},
                              headers=bearer(head))
        assert r.status == 422
        assert (await r.json())["error"]["details"]["fields"][0]["field"] == "note"
        for answer in (plan, {"status": "in_progress", "note": "20 dari 39 sudah terpasang."},
                       {"status": "done", "note": "39 dari 39 terpasang; foto terlampir."}):
            r = await router.post(url, json=answer, headers=bearer(head))
            assert r.status == 200, await r.text()
        r = await router.post(url, json=plan, headers=bearer(head))
        assert r.status == 409

        # Oversight learns the answers from the router's topic; all of it is public.
        async def public() -> dict[str, Any] | None:
            r = await oversight.get("/api/v1/recommendations",
                                    params={"region": "MDN", "agency": "MDN-DINKES"})
            items = (await r.json())["items"]
            return items[0] if items and items[0]["status"] == "done" else None

        done = await eventually(public, what="answers at oversight")
        assert [h["status"] for h in done["history"]] == ["open", "planned", "in_progress",
                                                          "done"]
        assert done["action_plan"] == plan["note"]
        assert "kadis-mdn" not in str(done) and "panel-budi" not in str(done)
        r = await oversight.get("/api/v1/recommendations", params={"status": "open"})
        assert (await r.json())["items"] == []
        r = await oversight.get("/api/v1/recommendations", params={"status": "nope"})
        assert r.status == 422

        # On the chain: who issued it, and that the agency answered.
        opool = pool_of(oversight)
        chain = await opool.fetch(
            "SELECT event_type, actor FROM oversight.timeline WHERE complaint_id = $1"
            " ORDER BY seq", f"rec:{rid}")
        # (Oversight reads its own topic and the router's: the issue may be chained
        # after an answer, so the order is not asserted.)
        assert sorted((c["event_type"], c["actor"]) for c in chain) == [
            *[("recommendation.answered", "agency:MDN-DINKES")] * 3,
            ("recommendation.issued", "panel-budi")]
        r = await oversight.get("/api/v1/audit/verify")
        assert (await r.json())["ok"] is True
        # On the public dashboard, with its history.
        r = await oversight.get("/", params={"region": "MDN"})
        row = (await r.text()).split(f'data-recommendation="{rid}"', 1)[1].split("</tr>")[0]
        assert body["what"] in row and "Selesai" in row and "Tindakan direncanakan" in row
        # And in the report of the period.
        r = await oversight.get("/reports/MDN/2026-Q4")
        html = await r.text()
        assert body["what"] in html and "Selesai" in html

        # A forged answer from another agency is dead-lettered with the reason, and
        # changes nothing.
        forged = Envelope.build(RecommendationAnswered(
            recommendation_id=rid, agency="MDN-PUPR", status="declined",
            note="Bukan urusan kami sama sekali."), complaint_id=f"rec:{rid}",
            producer="router")
        await publish(settings.kafka_bootstrap or "", topics.ROUTER, forged.to_bytes(),
                      key=forged.complaint_id.encode())
        dead = await read_topic(settings.kafka_bootstrap or "", topics.DEAD_LETTER,
                                until=lambda m: any("MDN-PUPR" in x.get("reason", "")
                                                    for x in m))
        assert any("answer from MDN-PUPR" in x["reason"] for x in dead)
        assert (await public()) is not None  # still done, history unchanged


@pytest.mark.browser
async def test_the_head_answers_on_the_desk_without_javascript(
        settings: Settings, browser: Browser) -> None:
    import uuid

    from awasi.events.payloads import RecommendationIssued

    rid = str(uuid.uuid4())
    issued = Envelope.build(RecommendationIssued(
        recommendation_id=rid, region="MDN", agency="MDN-DINKES",
        what="Buka loket pendaftaran puskesmas sejak pukul 07.30.",
        why="Unsur waktu penyelesaian (U3) terendah di Kota Medan.",
        due_date=(MONDAY_9 + timedelta(days=90)).date(), source_kind="report",
        source_ref="2026-Q3"), complaint_id=f"rec:{rid}", producer="oversight")
    async with running_service("router", settings) as router:
        pool = router.server.app[web_keys.POOL]
        await add_user(pool, username="kadis-mdn", password="rahasia-123", role="head",
                       agency="MDN-DINKES")
        await publish(settings.kafka_bootstrap or "", topics.OVERSIGHT, issued.to_bytes(),
                      key=issued.complaint_id.encode())
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM router.recommendations"),
                         what="recommendation stored")
        base = str(router.make_url("")).rstrip("/")
        context = await browser.new_context(java_script_enabled=False,
                                            viewport={"width": 390, "height": 844})
        try:
            page = await context.new_page()
            await page.goto(f"{base}/recommendations?lang=id")
            await page.fill("#username", "kadis-mdn")
            await page.fill("#password", "rahasia-123")
            await page.click("form[action='/login'] button[type=submit]")
            await page.goto(f"{base}/recommendations")
            section = page.locator(f"#rec-{rid}")
            await expect(section).to_contain_text("Buka loket pendaftaran")
            await expect(section.locator(".rec-status")).to_have_text("Menunggu jawaban Anda")
            await section.get_by_label("Jawaban").select_option("declined")
            await section.get_by_label("Rencana aksi").fill("tidak")
            await section.get_by_role("button", name="Kirim jawaban").click()
            await expect(page.get_by_role("alert")).to_contain_text("alasan paling sedikit 10")
            section = page.locator(f"#rec-{rid}")
            await section.get_by_label("Jawaban").select_option("planned")
            await section.get_by_label("Rencana aksi").fill(
                "Jadwal petugas pagi diubah mulai 1 Desember.")
            await section.get_by_role("button", name="Kirim jawaban").click()
            await expect(section.locator(".rec-status")).to_have_text("Tindakan direncanakan")
            await expect(section).to_contain_text("Jadwal petugas pagi diubah")
        finally:
            await context.close()
        sent = await pool.fetch("SELECT event_type, envelope FROM router.outbox"
                                " WHERE event_type = 'recommendation.answered'")
        assert len(sent) == 1
