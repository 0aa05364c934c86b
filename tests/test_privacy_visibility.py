"""Visibility and conversation access on every public surface of intake, against the
real service (its own factory, real PostgreSQL and broker):

- a private report (named, confidential, anonymous) is on none of ``/reports``,
  ``/api/v1/reports``, Open311 list and single; a public one is, without the
  reporter's name, phone, e-mail or Telegram chat id;
- the tracking code alone shows status, agency and deadlines; the conversation needs
  the follow-up secret (API header, page form), the filing browser, or the filing
  Telegram chat;
- reports filed before visibility existed become private (the migration, run over a
  row inserted before it).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintSubmitted, TicketInfoRequested
from awasi.settings import Settings
from services.intake import visibility
from tests.support.intake import complaint, csrf_of, form_data, routed_env, status_of
from tests.support.kafka import publish, read_topic
from tests.support.services import running_service
from tests.support.wait import eventually

PERSONAL = ("Siti", "Rahmawati", "5550 1234", "5550", "siti.rahma", "example.id")
QUESTION = "Siapa nama petugas yang meminta uang itu?"
ANSWER = "Namanya Pak Hendra, loket tiga, hari Senin."


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", settings.with_(rate_limit_per_minute=10_000)) as c:
        yield c


async def post(client: TestClient, **over: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/complaints", json=complaint(**over))
    body = await r.json()
    assert r.status == 201, body
    return body  # type: ignore[no-any-return]


def stranger(client: TestClient) -> aiohttp.ClientSession:
    """Another browser: the same server, its own (empty) cookie jar."""
    return aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


# --- the public surfaces list public reports only -------------------------------------

async def test_private_reports_are_on_no_public_surface(client: TestClient) -> None:
    private = {mode: await post(client, privacy=mode,
                                description=f"Laporan tertutup mode {mode} tentang pungli.")
               for mode in ("named", "confidential", "anonymous")}
    # The default is private: the request above did not say "visibility" at all.
    assert {b["visibility"] for b in private.values()} == {"private"}
    public = await post(client, privacy="named", visibility="public",
                        description="Pungutan liar Rp50.000 untuk surat pengantar.")
    assert public["visibility"] == "public"

    # JSON list: the public one only, with the allow-listed fields only.
    r = await client.get("/api/v1/reports")
    body = await r.json()
    assert r.status == 200
    assert [x["tracking_code"] for x in body["reports"]] == [public["tracking_code"]]
    item = body["reports"][0]
    assert tuple(item) == visibility.PUBLIC_REPORT_FIELDS
    assert item["description"] == "Pungutan liar Rp50.000 untuk surat pengantar."
    assert item["location"]["address"] == "Jl. Merdeka 1, Medan"
    text = await r.text()
    for needle in (*PERSONAL, "tertutup", "privacy", "secret", "reporter"):
        assert needle not in text, needle

    # The page.
    r = await client.get("/reports")
    html = await r.text()
    assert r.status == 200
    assert public["tracking_code"] in html and "Pungutan liar Rp50.000" in html
    for needle in (*PERSONAL, "tertutup mode"):
        assert needle not in html, needle
    for b in private.values():
        assert b["tracking_code"] not in html

    # Open311, list (both formats) and single.
    for fmt in ("json", "xml"):
        r = await client.get(f"/open311/v2/requests.{fmt}")
        text = await r.text()
        assert r.status == 200 and public["tracking_code"] in text
        for needle in (*PERSONAL, "tertutup"):
            assert needle not in text, (fmt, needle)
        for b in private.values():
            assert b["tracking_code"] not in text
            r = await client.get(f"/open311/v2/requests/{b['tracking_code']}.{fmt}")
            assert r.status == 404
    unknown = await client.get("/open311/v2/requests/MDN-ZZZZ-ZZZZ.json")
    hidden = await client.get(
        f"/open311/v2/requests/{private['named']['tracking_code']}.json")
    assert await hidden.json() == await unknown.json()  # says nothing about which
    r = await client.get(f"/open311/v2/requests/{public['tracking_code']}.json")
    got = (await r.json())[0]
    assert got["description"].startswith("Pungutan liar")
    text = await r.text()
    assert not any(n in text for n in PERSONAL)
    # The filters never reach a private report either.
    r = await client.get("/open311/v2/requests.json?service_request_id=" + ",".join(
        b["tracking_code"] for b in private.values()))
    assert await r.json() == []


async def test_public_list_pages_filters_and_errors(client: TestClient) -> None:
    codes = [(await post(client, visibility="public", privacy="anonymous",
                         category="sampah" if i % 2 else "asn-pungli",
                         description=f"Laporan publik nomor {i} untuk halaman."))
             ["tracking_code"] for i in range(5)]
    await post(client, privacy="anonymous")  # private: never counted in a page
    seen, token, pages = [], None, 0
    while True:
        url = "/api/v1/reports?limit=2" + (f"&page={token}" if token else "")
        body = await (await client.get(url)).json()
        seen += [x["tracking_code"] for x in body["reports"]]
        pages += 1
        token = body["next_page"]
        if token is None:
            break
    assert pages == 3 and seen == codes[::-1]  # newest first, each exactly once
    r = await client.get("/api/v1/reports?category=sampah&region=MDN&status=submitted")
    assert [x["tracking_code"] for x in (await r.json())["reports"]] == [codes[3], codes[1]]
    r = await client.get("/api/v1/reports?status=closed")
    assert (await r.json()) == {"reports": [], "next_page": None}

    for query, field in (("page=not-a-token", "page"), ("page=WzEsMl0", "page"),
                         ("region=XXX", "region"), ("category=no-such", "category"),
                         ("status=lost", "status"), ("limit=0", "limit"),
                         ("limit=101", "limit")):
        r = await client.get(f"/api/v1/reports?{query}")
        body = await r.json()
        assert r.status == 422, query
        assert body["error"]["details"]["fields"][0]["field"] == field, query
    # The page says so in words, and still lists (without the bad filter).
    r = await client.get("/reports?page=not-a-token")
    assert r.status == 422 and "tidak berlaku" in await r.text()

    # The page's next link carries the filters and the token.
    html = await (await client.get("/reports?region=MDN")).text()
    assert 'rel="next"' not in html  # five fit on one page of twenty
    assert all(c in html for c in codes)


async def test_each_page_is_one_indexed_walk(client: TestClient, settings: Settings) -> None:
    from services.intake.reports import ReportQuery, page_sql

    after = (datetime.now(UTC), "MDN-ZZZZ-ZZZZ")
    conn = await asyncpg.connect(settings.database_url)
    try:
        for q in (ReportQuery(), ReportQuery(region="MDN"), ReportQuery(category="sampah"),
                  ReportQuery(region="MDN", status="assigned", after=after),
                  ReportQuery(category="sampah", after=after)):
            sql, args = page_sql(q)
            async with conn.transaction():
                # Empty tables make a sequential scan cheapest; forbid it to see which
                # index the statement can walk, and that no sort is needed.
                await conn.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
            assert "complaints_public" in plan, plan
            assert "Sort" not in plan and "Seq Scan" not in plan, plan
    finally:
        await conn.close()


# --- the conversation needs the secret, the filing browser or the filing chat ----------

async def ask_and_answer(client: TestClient, settings: Settings, body: dict[str, Any]) -> None:
    """The agency asks a question (router event), the citizen answers with the secret."""
    cid, code = body["complaint_id"], body["tracking_code"]
    bootstrap = settings.kafka_bootstrap or ""
    await publish(bootstrap, topics.ROUTER, routed_env(cid, code).to_bytes(), key=cid.encode())
    await publish(bootstrap, topics.ROUTER, Envelope.build(TicketInfoRequested(
        agency="MDN-INSPEKTORAT", question=QUESTION, paused_at=datetime.now(UTC)),
        complaint_id=cid, producer="router").to_bytes(), key=cid.encode())

    async def asked() -> bool:
        return (await status_of(client, code))["status"] == "waiting_info"

    await eventually(asked)
    r = await client.post(f"/api/v1/complaints/{code}/info",
                          json={"secret": body["secret"], "message": ANSWER})
    assert r.status == 200


@pytest.mark.parametrize("privacy", ["named", "confidential", "anonymous"])
async def test_api_conversation_needs_the_secret(client: TestClient, settings: Settings,
                                                 privacy: str) -> None:
    body = await post(client, privacy=privacy, visibility="public")
    # Every identity mode's receipt carries a follow-up secret (four groups of four).
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", body["secret"])
    await ask_and_answer(client, settings, body)
    code = body["tracking_code"]

    r = await client.get(f"/api/v1/complaints/{code}")
    alone = await r.json()
    assert r.status == 200 and alone["access"] == "status"
    assert set(alone) == set(visibility.STATUS_FIELDS)
    assert alone["agency"]["code"] == "MDN-INSPEKTORAT" and alone["deadlines"]["resolve_by"]
    text = await r.text()
    for needle in (QUESTION, ANSWER, "Petugas meminta", "Pungutan liar di kantor", *PERSONAL):
        assert needle not in text, needle

    r = await client.get(f"/api/v1/complaints/{code}",
                         headers={"X-Awasi-Secret": "AAAA-BBBB-CCCC-DDDD"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "wrong_secret"

    full = await status_of(client, code, body["secret"].lower())  # typed forgivingly
    assert full["access"] == "conversation"
    assert set(full) == set(visibility.STATUS_FIELDS) | set(visibility.CONVERSATION_FIELDS)
    entries = {e["kind"]: e for e in full["timeline"]}
    assert entries["ticket.info_requested"]["question"] == QUESTION
    assert entries["info_added"]["message"] == ANSWER
    assert full["description"].startswith("Petugas meminta")
    assert not any(n in json.dumps(full) for n in PERSONAL)
    # The answer never reaches the public list, though the report is public.
    listed = await (await client.get("/api/v1/reports")).text()
    assert code in listed and ANSWER not in listed and QUESTION not in listed


async def test_page_conversation_needs_the_filing_browser_or_the_secret(
        client: TestClient, settings: Settings) -> None:
    # Filed through the web form: this browser keeps the receipt and sees everything.
    csrf = csrf_of(await (await client.get("/")).text())
    r = await client.post("/", data=form_data(csrf, description="Lubang besar di depan "
                                              "sekolah dasar, anak-anak terjatuh."),
                          allow_redirects=False)
    location = r.headers["Location"]
    html = await (await client.get(location)).text()
    secret = re.search(r'data-testid="secret">([^<]+)<', html)
    assert secret and "anak-anak terjatuh" in html and 'data-testid="timeline"' in html
    code = location.rsplit("/", 1)[1]
    body = {"tracking_code": code, "secret": secret.group(1),
            "complaint_id": str(await _complaint_id(settings, code))}
    await ask_and_answer(client, settings, body)
    assert ANSWER in await (await client.get(location)).text()

    async with stranger(client) as other:
        r = await other.get(location)
        html = await r.text()
        assert r.status == 200 and code in html
        # The status, the agency and the deadlines, all the code alone shows.
        assert 'data-status="assigned"' in html and "MDN-INSPEKTORAT" in html
        assert "WIB" in html
        for needle in (ANSWER, QUESTION, "anak-anak terjatuh", "Budi", "budi@example.id",
                       'data-testid="timeline"', "/withdraw", "/info"):
            assert needle not in html, needle
        assert 'data-testid="unlock"' in html
        r = await other.post(f"{location}/unlock",
                             data={"csrf": csrf_of(html), "secret": "WRONG-WRONG-WRON-GWRO"})
        html = await r.text()
        assert r.status == 403 and 'id="unlock-secret-error"' in html
        assert ANSWER not in html
        r = await other.post(f"{location}/unlock",
                             data={"csrf": csrf_of(html), "secret": secret.group(1)})
        html = await r.text()
        assert r.status == 200 and ANSWER in html and QUESTION in html
        assert "anak-anak terjatuh" in html
        cookie = next(c for c in other.cookie_jar if c.key == "awasi_follow")
        assert secret.group(1) not in cookie.value  # the codes only, never the secret
        assert not cookie["max-age"] and not cookie["expires"]  # a session cookie
    # A third browser, without anything, still sees no conversation.
    async with stranger(client) as third:
        assert ANSWER not in await (await third.get(location)).text()


async def _complaint_id(settings: Settings, code: str) -> Any:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetchval("SELECT id FROM intake.complaints WHERE tracking_code = $1",
                                   code)
    finally:
        await conn.close()


async def test_web_form_visibility_checkbox(client: TestClient, settings: Settings) -> None:
    html = await (await client.get("/")).text()
    box = re.search(r'<input type="checkbox" id="visibility"[^>]*>', html)
    assert box and "checked" not in box.group(0)  # unticked: private unless chosen
    assert "Tampilkan laporan saya di daftar publik" in html
    assert "Nama dan kontak Anda tidak pernah ditampilkan" in html
    english = await (await client.get("/?lang=en")).text()
    assert "Show my report on the public list" in english
    await client.get("/?lang=id")
    csrf = csrf_of(html)
    r = await client.post("/", data=form_data(csrf), allow_redirects=False)
    private_code = r.headers["Location"].rsplit("/", 1)[1]
    r = await client.post("/", data=form_data(csrf, visibility="public",
                                              title="Jalan publik berlubang"),
                          allow_redirects=False)
    public_code = r.headers["Location"].rsplit("/", 1)[1]
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = dict(await conn.fetch("SELECT tracking_code, visibility FROM intake.complaints"))
    finally:
        await conn.close()
    assert rows == {private_code: "private", public_code: "public"}
    listed = await (await client.get("/reports")).text()
    assert public_code in listed and private_code not in listed
    assert "Budi" not in listed and "budi@example.id" not in listed and "811 222" not in listed


async def test_submitted_event_carries_visibility_and_old_events_read_private(
        client: TestClient, settings: Settings) -> None:
    pub = await post(client, visibility="public", privacy="anonymous")
    priv = await post(client, privacy="confidential")
    msgs = await read_topic(settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda ms: len(ms) >= 2)
    by_id = {m["complaint_id"]: m["payload"] for m in msgs}
    assert by_id[pub["complaint_id"]]["visibility"] == "public"
    assert by_id[priv["complaint_id"]]["visibility"] == "private"
    old = {k: v for k, v in by_id[pub["complaint_id"]].items() if k != "visibility"}
    assert ComplaintSubmitted.model_validate(old).visibility == "private"


# --- existing data ---------------------------------------------------------------------

async def test_reports_filed_before_the_migration_become_private(pg: Any) -> None:
    from awasi.db import migrate_schema
    from services.intake.app import migrations

    name = f"v_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg.dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(pg.dsn(name))
        try:
            everything = migrations()
            await migrate_schema(conn, "intake", [m for m in everything if m.version < 160])
            await conn.execute(
                "INSERT INTO intake.complaints (id, tracking_code, region, category,"
                " description, privacy, channel, reporter_ref, secret_hash, submitted_at,"
                " updated_at) VALUES (gen_random_uuid(), 'MDN-AAAA-BBBB', 'MDN',"
                " 'asn-pungli', 'Dilaporkan sebelum ada pilihan publikasi.', 'named', 'api',"
                " 'rr_old', '\\x00', now(), now())")
            applied = await migrate_schema(conn, "intake", everything)
            assert "intake/0160_visibility.sql" in applied
            assert await conn.fetchval("SELECT visibility FROM intake.complaints") == "private"
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE intake.complaints SET visibility = 'everyone'")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


# --- the public list on a phone, in Chromium -------------------------------------------

@pytest.mark.browser
@pytest.mark.filterwarnings("ignore:Session-scoped fixtures defined as instance methods")
async def test_public_list_fits_a_phone_without_javascript(page: Any, settings: Settings,
                                                           browser: Any) -> None:
    async with running_service("intake", settings.with_(rate_limit_per_minute=1000)) as c:
        for i in range(3):
            await post(c, visibility="public", privacy="anonymous",
                       title=f"Laporan publik {i}",
                       description="Pungutan liar di loket kelurahan, " + "sangat " * 60)
        await post(c, privacy="anonymous", title="Laporan tertutup")
        context = await browser.new_context(java_script_enabled=False,
                                            viewport={"width": 390, "height": 844})
        try:
            tab = await context.new_page()
            await tab.goto(str(c.make_url("/reports?limit=2")))
            assert await tab.locator("html").get_attribute("lang") == "id"
            items = tab.locator("ol.reports > li")
            assert await items.count() == 2
            await tab.get_by_role("link", name="Laporan sebelumnya").click()
            assert "limit=2" in tab.url and "page=" in tab.url  # the page size carries on
            assert await items.count() == 1
            assert "Laporan publik 0" in await tab.content()
            assert "Laporan tertutup" not in await tab.content()
            await tab.select_option("#f-region", "MDN")
            await tab.get_by_role("button", name="Tampilkan").click()
            assert await items.count() == 3
            overflow = await tab.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth")
            wide = await tab.evaluate(
                "[...document.querySelectorAll('body *')].filter(e => "
                "e.getBoundingClientRect().right > window.innerWidth + 1)"
                ".map(e => e.tagName + '.' + e.className + ' ' + e.id).slice(0, 5)")
            assert overflow <= 0, wide
        finally:
            await context.close()
