"""The panel console's queue and case page: filters (reason, region, agency, age,
tracking code) with keyset pages, releasing a claim, logging out, and the case told
in people's words in both languages (no raw event types, status codes or JSON)."""

from __future__ import annotations

import re
from datetime import timedelta

from awasi.events import topics
from awasi.settings import Settings
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    OTHER_AGENCY,
    bearer,
    eventually,
    login,
    new_cid,
    oversight,
    pool_of,
    routed,
    send,
    submitted,
    transferred,
)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


async def test_queue_filters_pages_release_and_logout(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        # Five breached cases: four at Disdukcapil (Medan), one at BKPSDM.
        codes = [f"AWS-FLT00{i}" for i in range(5)]
        cids = [new_cid() for _ in codes]
        for i, code in enumerate(codes):
            cid = cids[i]
            await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
            agency = OTHER_AGENCY if i == 4 else "MDN-DISDUKCAPIL"
            await send(settings, topics.ROUTER, routed(
                cid, MONDAY_9, ACK_DUE + timedelta(hours=i), None, agency=agency, code=code))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) = 5 FROM oversight.deadlines WHERE kind = 'acknowledge'"
            " AND step = 'breach'"), what="deadlines scheduled")
        # Each breach in turn, an hour apart: the queue's order and ages follow.
        for i in range(5):
            clock.set(ACK_DUE + timedelta(hours=i, seconds=1))
            await eventually(lambda n=i + 1: pool.fetchval(
                "SELECT count(*) = $1 FROM oversight.review_items WHERE closed_at IS NULL",
                n), what=f"{i + 1} cases in the queue")
        clock.set(ACK_DUE + timedelta(hours=6))
        ani = bearer(await login(client, "ani", "panel"))
        budi = bearer(await login(client, "budi", "panel"))

        async def queue(query: str = "") -> dict:
            r = await client.get(f"/api/v1/review-queue{query}", headers=ani)
            assert r.status == 200, await r.text()
            return await r.json()

        everything = await queue()
        assert [i["tracking_code"] for i in everything["items"]] == codes
        assert everything["next"] is None
        # Keyset pages of two, oldest first, no case twice or missed.
        seen, after = [], ""
        while True:
            page = await queue(f"?limit=2{after}")
            seen += [i["tracking_code"] for i in page["items"]]
            if page["next"] is None:
                break
            after = f"&after={page['next']}"
        assert seen == codes
        assert [i["tracking_code"] for i in (await queue(
            f"?agency={OTHER_AGENCY}"))["items"]] == [codes[4]]
        assert len((await queue("?region=MDN&reason=breach"))["items"]) == 5
        assert (await queue("?region=SRG"))["items"] == []
        assert (await queue("?reason=dispute"))["items"] == []
        assert [i["tracking_code"] for i in (await queue("?code=aws-flt002"))["items"]] == [
            codes[2]]
        # "_" is a plain character, not LIKE's wildcard; "%" is no code at all.
        assert (await queue("?code=AWS_FLT"))["items"] == []
        r = await client.get("/api/v1/review-queue?code=%25", headers=ani)
        assert r.status == 422
        # In the queue for 6, 5, 4, 3 and 2 hours; 0.16 days is 3.84 hours.
        assert len((await queue("?min_age_days=0.16"))["items"]) == 3
        r = await client.get("/api/v1/review-queue?after=bad", headers=ani)
        assert r.status == 422
        r = await client.get("/api/v1/review-queue?limit=0", headers=ani)
        assert r.status == 422

        # Release: only the holder.
        r = await client.post(f"/api/v1/review-queue/{codes[0]}/release", headers=ani)
        assert r.status == 404
        assert (await client.post(f"/api/v1/review-queue/{codes[0]}/claim",
                                  headers=ani)).status == 200
        r = await client.post(f"/api/v1/review-queue/{codes[0]}/release", headers=budi)
        assert r.status == 409 and (await r.json())["error"]["code"] == "not_claim_holder"
        r = await client.post(f"/api/v1/review-queue/{codes[0]}/release", headers=ani)
        assert r.status == 200
        assert (await queue())["items"][0]["claimed_by"] is None
        assert await pool.fetchval(
            "SELECT actor FROM oversight.timeline WHERE event_type = 'case.claim_released'"
        ) == "ani"

        # The console: the same filters, a next-page link, and logout ending the session.
        client.session.cookie_jar.clear()
        r = await client.post("/api/v1/auth/login",
                              json={"username": "ani", "password": "rahasia-123"})
        assert r.status == 200
        html = await (await client.get(
            f"/panel?lang=en&agency={OTHER_AGENCY}")).text()
        assert re.findall(r'data-code="([^"]+)"', html) == [codes[4]]
        html = await (await client.get("/panel?lang=en&limit=2")).text()
        assert re.findall(r'data-code="([^"]+)"', html) == codes[:2]
        nxt = re.search(r'rel="next" href="([^"]+)"', html)
        assert nxt
        html2 = await (await client.get(nxt.group(1).replace("&amp;", "&"))).text()
        assert re.findall(r'data-code="([^"]+)"', html2) == codes[2:4]
        html = await (await client.get("/panel?lang=en&code=NOPE")).text()
        assert "No case in the queue matches." in html
        r = await client.post("/panel/logout", data={}, allow_redirects=False)
        assert r.status == 403  # no CSRF token
        r = await client.post("/panel/logout", data={"csrf_token": csrf(html)},
                              allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/panel/login"
        r = await client.get("/panel", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/panel/login")

        # A transfer moves the case's open queue item to the new agency's filter (the
        # item carries region and agency, kept by the database: migration 1200).
        await send(settings, topics.ROUTER, transferred(
            cids[3], ACK_DUE + timedelta(hours=6), ACK_DUE + timedelta(days=3),
            ACK_DUE + timedelta(days=10)))
        await eventually(lambda: pool.fetchval(
            "SELECT agency = $2 FROM oversight.cases WHERE complaint_id = $1",
            cids[3], OTHER_AGENCY), what="the transfer applied")
        assert [i["tracking_code"] for i in (await queue(
            f"?agency={OTHER_AGENCY}"))["items"]] == [codes[3], codes[4]]
        assert [i["tracking_code"] for i in (await queue(
            "?agency=MDN-DISDUKCAPIL"))["items"]] == codes[:3]
        assert await pool.fetchval(
            "SELECT array_agg(DISTINCT agency || '/' || region) FROM oversight.review_items"
            " WHERE complaint_id = $1", cids[3]) == [f"{OTHER_AGENCY}/MDN"]


async def test_the_case_page_in_peoples_words(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    cid, code = new_cid(), "AWS-WORDS1"
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        await send(settings, topics.INTAKE, submitted(cid, MONDAY_9, code))
        await send(settings, topics.ROUTER, routed(cid, MONDAY_9, ACK_DUE, None, code=code))
        clock.set(ACK_DUE + timedelta(hours=1))
        await eventually(lambda: pool.fetchval(
            "SELECT count(*) FROM oversight.timeline WHERE complaint_id = $1"
            " AND event_type = 'case.escalated'", cid), what="the escalation on the chain")
        await login(client, "ani", "panel")  # keeps the session cookie
        pages = {}
        for lang in ("en", "id"):
            r = await client.get(f"/panel/cases/{code}?lang={lang}")
            assert r.status == 200
            pages[lang] = await r.text()
        en, id_ = pages["en"], pages["id"]
        timeline = en[en.index('id="timeline"'):en.index("</table>", en.index('id="timeline"'))]
        for raw in ("complaint.submitted", "complaint.routed", "deadline.breached",
                    "case.escalated", "reporter_ref", "{", "routed</td>", "adminduk-ktp\""):
            assert raw not in timeline, raw
        assert "The citizen submitted the complaint" in en
        assert "Sent to the responsible agency" in en
        assert "A deadline was missed" in en and "Escalated" in en
        assert "KTP belum jadi" in en  # what the citizen wrote
        assert "With the agency" in en or "Acknowledged by the agency" in en
        assert "Warga mengajukan pengaduan" in id_ and "Tenggat terlewati" in id_
        assert "Diteruskan ke OPD yang bertanggung jawab" in id_
        assert ">routed<" not in en and ">routed<" not in id_


async def test_a_panel_member_changes_their_password_on_the_console(
        settings: Settings) -> None:
    async with oversight(settings, ManualClock(MONDAY_9)) as client:
        await login(client, "ani", "panel")  # keeps the session cookie
        page = await (await client.get("/panel/password?lang=en")).text()
        token = csrf(page)
        r = await client.post("/panel/password?lang=en", data={
            "csrf_token": token, "current_password": "rahasia-123",
            "new_password": "qwertyuiop", "new_password_again": "qwertyuiop"})
        text = await r.text()
        assert r.status == 422 and "too easy to guess" in text, text[text.find("<main>"):][:600]
        r = await client.post("/panel/password?lang=en", data={
            "csrf_token": token, "current_password": "rahasia-123",
            "new_password": "layang-layang-di-pantai", "new_password_again": "lain"})
        assert r.status == 422 and "differ" in await r.text()
        r = await client.post("/panel/password", data={
            "current_password": "rahasia-123", "new_password": "layang-layang-di-pantai",
            "new_password_again": "layang-layang-di-pantai"})
        assert r.status == 403  # no CSRF token
        r = await client.post("/panel/password?lang=id", data={
            "csrf_token": token, "current_password": "rahasia-123",
            "new_password": "layang-layang-di-pantai",
            "new_password_again": "layang-layang-di-pantai"})
        assert r.status == 200 and "Kata sandi Anda telah diganti" in await r.text()
        client.session.cookie_jar.clear()
        r = await client.post("/api/v1/auth/login", json={
            "username": "ani", "password": "layang-layang-di-pantai"})
        assert r.status == 200
