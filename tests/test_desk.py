"""The agency desk over HTTP (forms, no JavaScript): login form with its CSRF token,
queue filters and sorting, the triage officer's page, the head's escalations, both
languages; and the demo staff."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from awasi.catalog import load_catalog
from awasi.db import create_pool
from awasi.events.payloads import CaseEscalated, DeadlineWarning
from awasi.identity import SESSION_COOKIE, add_user, authenticate, csrf_token
from awasi.settings import DEMO_CATALOG, Settings
from services.router.cli import DEMO_PASSWORD, seed_demo_staff
from tests.support.router import (
    PASSWORD,
    bearer,
    create_users,
    event,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service


async def _form_login(client: TestClient, username: str, password: str) -> tuple[int, str]:
    client.session.cookie_jar.clear()
    r = await client.get("/login?next=/triage")
    html = await r.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token, html
    r = await client.post("/login", data={"csrf_token": token.group(1), "username": username,
                                          "password": password, "next": "/triage"},
                          allow_redirects=False)
    return r.status, r.headers.get("Location", "") or await r.text()


async def test_login_form_queue_filters_triage_and_escalations(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    bootstrap = settings.kafka_bootstrap or ""
    old = submitted("MDN", "jalan-rusak", "Sudah sebulan tidak ditangani.",
                    submitted_at=datetime.now(UTC) - timedelta(days=40))
    fresh = submitted("MDN", "jalan-rusak", "Baru saja terjadi longsor kecil.")
    waste = submitted("MDN", "sampah", "Sampah menumpuk di selokan.")  # keyword rule -> DLH
    unrouted = submitted("MDN", "lainnya", "Tidak jelas siapa yang berwenang.")
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr = await login(client, "mdn.pupr")
        # One after the other: "newest first" is the order the tickets reached the router.
        await send(bootstrap, old)
        await wait_ticket(client, pupr, old.payload["tracking_code"])
        for env in (fresh, waste, unrouted):
            await send(bootstrap, env)
        await wait_ticket(client, pupr, fresh.payload["tracking_code"])

        # --- login form: CSRF double submit, wrong password, then a session -----------
        r = await client.post("/login", data={"username": "mdn.pupr", "password": PASSWORD},
                              allow_redirects=False)
        assert r.status == 403  # no CSRF token
        status, _ = await _form_login(client, "mdn.pupr", "wrong-password")
        assert status == 401
        status, location = await _form_login(client, "triage.mdn", PASSWORD)
        assert status == 303 and location == "/triage"
        triage_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))
        triage_token = triage_cookie[SESSION_COOKIE].value
        pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
        try:
            user = await authenticate(pool, triage_token)
            assert user is not None and user.username == "triage.mdn"
        finally:
            await pool.close()
        client.session.cookie_jar.clear()

        async def page(token: str, path: str) -> tuple[int, str]:
            r = await client.get(path, cookies={SESSION_COOKIE: token}, allow_redirects=False)
            return r.status, await r.text()

        # --- queue: newest first; overdue; due soon; category; by deadline ------------
        codes = {"old": old.payload["tracking_code"], "fresh": fresh.payload["tracking_code"]}
        status, html = await page(pupr, "/?lang=en")
        assert status == 200 and html.index(codes["fresh"]) < html.index(codes["old"])
        assert "overdue" in html
        status, html = await page(pupr, "/?overdue=1")
        assert codes["old"] in html and codes["fresh"] not in html
        status, html = await page(pupr, "/?sort=deadline")
        assert html.index(codes["old"]) < html.index(codes["fresh"])
        status, html = await page(pupr, "/?category=sampah")
        assert codes["old"] not in html and codes["fresh"] not in html
        r = await client.get("/api/v1/tickets", params={"overdue": "true"}, headers=bearer(pupr))
        assert [t["tracking_code"] for t in (await r.json())["tickets"]] == [codes["old"]]
        r = await client.get("/api/v1/tickets", params={"overdue": "false"},
                             headers=bearer(pupr))
        assert [t["tracking_code"] for t in (await r.json())["tickets"]] == [codes["fresh"]]
        r = await client.get("/api/v1/tickets", params={"sort": "sideways"}, headers=bearer(pupr))
        assert r.status == 422
        # Indonesian by default, English on request.
        status, html = await page(pupr, "/?lang=id")
        assert "Antrean" in html and 'lang="id"' in html
        status, html = await page(pupr, "/?lang=en")
        assert "Queue" in html and 'lang="en"' in html

        # --- the triage officer routes from the desk -----------------------------------
        status, html = await page(triage_token, "/triage")
        assert status == 200 and unrouted.payload["tracking_code"] in html
        ticket_id = re.search(r'action="/triage/([0-9a-f-]+)/route"', html)
        assert ticket_id
        r = await client.post(f"/triage/{ticket_id.group(1)}/route",
                              cookies={SESSION_COOKIE: triage_token}, allow_redirects=False,
                              data={"agency": "MDN-PUPR",
                                    "csrf_token": csrf_token(settings.secret_key,
                                                             triage_token)})
        assert r.status == 303
        routed = await wait_ticket(client, pupr, unrouted.payload["tracking_code"])
        assert routed["rule"] == "manual:triage.mdn"
        status, html = await page(triage_token, "/triage")
        assert unrouted.payload["tracking_code"] not in html

        # --- the head's escalations -----------------------------------------------------
        await send(bootstrap, event(CaseEscalated(level=2, kind="acknowledge",
                                                  agency="MDN-PUPR"), old.complaint_id,
                                    "oversight"))
        await wait_ticket(client, pupr, codes["old"], escalation_level=2)
        pool = await create_pool(settings.database_url or "", min_size=1, max_size=1)
        try:
            await add_user(pool, username="mdn.pupr.head", password=PASSWORD, role="head",
                           agency="MDN-PUPR")
        finally:
            await pool.close()
        head = await login(client, "mdn.pupr.head")
        status, html = await page(head, "/escalations")
        assert status == 200 and codes["old"] in html and codes["fresh"] not in html
        status, _ = await page(pupr, "/escalations")
        assert status == 403  # staff are not heads

        # --- escalations reach people: warning badge, head and inspectorate -------------
        await send(bootstrap, event(DeadlineWarning(kind="resolve", agency="MDN-PUPR",
                                                    due_at=datetime.now(UTC)),
                                    fresh.complaint_id, "oversight"))
        await send(bootstrap, event(CaseEscalated(level=1, kind="resolve",
                                                  agency="MDN-PUPR"), fresh.complaint_id,
                                    "oversight"))
        await wait_ticket(client, pupr, codes["fresh"], escalation_level=1)
        status, html = await page(pupr, "/?warned=1&lang=en")
        assert codes["fresh"] in html and codes["old"] not in html
        status, html = await page(head, "/notifications?lang=en")
        assert status == 200 and codes["fresh"] in html  # level 1: the head
        assert codes["old"] not in html  # level 2 goes to the inspectorate
        inspector = await login(client, "mdn.inspektorat")
        status, html = await page(inspector, "/notifications")
        assert codes["old"] in html and codes["fresh"] not in html
        r = await client.get("/api/v1/notifications", headers=bearer(pupr))
        assert (await r.json())["notifications"] == []  # staff of the agency: not theirs

        # --- the sending agency keeps a read-only view of what it transferred ------------
        r = await client.post(f"/api/v1/tickets/{routed['id']}/transfer", headers=bearer(pupr),
                              json={"agency": "MDN-DLH", "reason": "Urusan drainase"})
        assert r.status == 200, await r.text()
        status, html = await page(pupr, "/transferred?lang=en")
        assert status == 200 and unrouted.payload["tracking_code"] in html
        assert "Urusan drainase" in html and "MDN-DLH" in html
        r = await client.get(f"/api/v1/tickets/{routed['id']}", headers=bearer(pupr))
        assert r.status == 404  # the ticket itself is the new agency's

        # --- logout ends the session ---------------------------------------------------
        r = await client.post("/logout", cookies={SESSION_COOKIE: head}, allow_redirects=False,
                              data={"csrf_token": csrf_token(settings.secret_key, head)})
        assert r.status == 303
        status, _ = await page(head, "/escalations")
        assert status == 302


async def test_demo_staff_are_created_once(database_url: str) -> None:
    catalog = load_catalog(DEMO_CATALOG)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        first = await seed_demo_staff(pool, catalog)
        again = await seed_demo_staff(pool, catalog)
        assert first == again
        names = {u for u, *_ in first}
        assert {"mdn.inspektorat", "mdn.inspektorat.head", "triage.mdn", "triage.srg",
                "panel.demo", "admin.demo"} <= names
        count = await pool.fetchval("SELECT count(*) FROM identity.users")
        assert count == len(first)
        row = await pool.fetchrow("SELECT * FROM identity.users WHERE username = 'triage.srg'")
        assert row["role"] == "triage" and row["region"] == "SRG"
        row = await pool.fetchrow(
            "SELECT * FROM identity.users WHERE username = 'mdn.inspektorat'")
        assert row["agency"] == "MDN-INSPEKTORAT" and row["role"] == "staff"
        assert all(pw == DEMO_PASSWORD for _, pw, _, _ in first)
        assert all(agency in catalog.agencies for _, _, role, agency in first
                   if role in ("staff", "head"))
    finally:
        await pool.close()


def test_every_desk_message_has_indonesian_and_english() -> None:
    from pathlib import Path

    from awasi.i18n import Catalogs

    root = Path(__file__).resolve().parent.parent / "services" / "router"
    pattern = re.compile(r"""(?:\b_|gettext)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")
    found: set[str] = set()
    for path in [*sorted((root / "templates").glob("*.html")), root / "desk.py"]:
        for m in pattern.finditer(path.read_text()):
            found.add(m.group(1) or m.group(2))
    assert len(found) > 80  # the extraction works
    catalogs = Catalogs(root / "locale")
    assert catalogs.missing("id", iter(sorted(found))) == []
    assert catalogs.missing("en", iter(sorted(found))) == []
    assert catalogs.gettext("Waiting for the citizen", "id") == "Menunggu jawaban warga"
    assert catalogs.gettext("Waiting for the citizen", "en") == "Waiting for the citizen"


async def test_ticket_page_photos_unreachable_intake_and_refused_action(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    from awasi.signing import verify

    settings = router_settings  # intake_url points at a closed port
    env = submitted("MDN", "jalan-rusak", "Ada foto lubangnya.", privacy="named",
                    photo_ids=("ph-1", "ph-2"))
    async with running_service("router", settings) as client:
        await create_users(settings.database_url or "")
        pupr = await login(client, "mdn.pupr")
        await send(settings.kafka_bootstrap or "", env)
        t = await wait_ticket(client, pupr, env.payload["tracking_code"])
        assert t["photo_count"] == 2
        r = await client.get(f"/tickets/{t['id']}?lang=id", cookies={SESSION_COOKIE: pupr})
        html = await r.text()
        assert r.status == 200 and "Kontak tidak tersedia saat ini" in html
        assert r.headers["Cache-Control"] == "no-store"
        links = re.findall(r'href="http://127\.0\.0\.1:9/photos/([^"?]+)\?token=([^"]+)"', html)
        assert [p for p, _ in links] == ["ph-1", "ph-2"]
        for photo_id, token in links:
            assert verify(settings.secret_key, "photo", token, 3600) == photo_id
        # A refused action shows the ticket again with the reason, in Indonesian.
        csrf = csrf_token(settings.secret_key, pupr)
        for _ in range(2):
            r = await client.post(f"/tickets/{t['id']}/acknowledge", data={"csrf_token": csrf},
                                  cookies={SESSION_COOKIE: pupr}, allow_redirects=False)
        assert r.status == 409
        assert "Tindakan ini tidak dapat dilakukan" in await r.text()
        r = await client.post(f"/tickets/{t['id']}/resolve", data={"csrf_token": csrf},
                              cookies={SESSION_COOKIE: pupr}, allow_redirects=False)
        assert r.status == 422 and "Periksa kembali formulir" in await r.text()
