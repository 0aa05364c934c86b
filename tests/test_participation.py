"""Participation on public reports, against the real intake service (its own
factory, real PostgreSQL and broker) and the real router consumer:

- support ("saya juga mengalami"): counted once per device (signed cookie), also
  across a restart of the service; 404 alike for private, withdrawn and unknown
  reports; rate limited per device and per address; the form on the public page
  works without JavaScript and checks CSRF; the event carries the count only, and
  the router keeps the largest count and sorts its queue by it;
- the public report page: allow-listed fields, the public timeline (no private
  follow-up), 404 for private reports;
- the public list: sort by support, keyset pages in that order, ``near`` with a
  capped radius, unknown parameters and foreign tokens are 422 naming them, each
  page one indexed walk;
- similar reports (``GET /api/v1/reports/similar``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from awasi.catalog import load_catalog
from awasi.events import topics
from awasi.events.payloads import ComplaintSupported
from awasi.settings import Settings
from services.intake import device, reports, visibility
from tests.support.intake import complaint, csrf_of
from tests.support.kafka import read_topic
from tests.support.router import (
    create_users,
    event,
    login,
    router_settings,  # noqa: F401 - fixture
    send,
    submitted,
    wait_ticket,
)
from tests.support.services import running_service

PERSONAL = ("Siti", "Rahmawati", "5550 1234", "siti.rahma", "example.id")
PRIVATE_NOTE = "Nomor rumah saya 12, tetangga saya Pak Darto melihatnya."


@pytest.fixture
def intake_settings(settings: Settings) -> Settings:
    return settings.with_(rate_limit_per_minute=10_000, support_rate_limit_per_minute=1000,
                          support_address_rate_limit_per_minute=10_000)


@pytest.fixture
async def client(intake_settings: Settings) -> AsyncIterator[TestClient]:
    async with running_service("intake", intake_settings) as c:
        yield c


async def post(client: TestClient, **over: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/complaints", json=complaint(**over))
    body = await r.json()
    assert r.status == 201, body
    return body  # type: ignore[no-any-return]


def browser(client: TestClient) -> aiohttp.ClientSession:
    """Another device: the same server, its own (empty) cookie jar."""
    return aiohttp.ClientSession(base_url=str(client.make_url("/")),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


async def support(session: aiohttp.ClientSession | TestClient, code: str,
                  status: int = 200) -> dict[str, Any]:
    r = await session.post(f"/api/v1/complaints/{code}/support")
    body = await r.json()
    assert r.status == status, body
    return body  # type: ignore[no-any-return]


# --- support ------------------------------------------------------------------------------

async def test_support_counts_once_per_device_and_travels_without_personal_data(
        client: TestClient, intake_settings: Settings) -> None:
    public = await post(client, visibility="public")
    code = public["tracking_code"]
    async with browser(client) as a, browser(client) as b:
        r = await a.post(f"/api/v1/complaints/{code}/support")
        assert await r.json() == {"tracking_code": code, "support_count": 1, "counted": True}
        cookie = r.cookies[device.COOKIE]
        set_cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
        # The same device again, twice: nothing more is counted.
        for _ in range(2):
            assert await support(a, code) == {"tracking_code": code, "support_count": 1,
                                              "counted": False}
        assert (await support(b, code))["support_count"] == 2
    # A forged device cookie is a new device, not someone else's.
    forged = {"Cookie": f"{device.COOKIE}=not-signed"}
    r = await client.post(f"/api/v1/complaints/{code}/support", headers=forged)
    assert (await r.json())["support_count"] == 3

    listed = (await (await client.get("/api/v1/reports")).json())["reports"]
    assert listed[0]["support_count"] == 3

    # The events carry the new total and nothing else; no device id on the topic.
    msgs = await read_topic(intake_settings.kafka_bootstrap or "", topics.INTAKE,
                            until=lambda m: sum(x["type"] == "complaint.supported"
                                                for x in m) >= 3)
    supported = [m for m in msgs if m["type"] == "complaint.supported"]
    assert [m["payload"] for m in supported] == [{"support_count": n} for n in (1, 2, 3)]
    assert all(m["complaint_id"] == public["complaint_id"] for m in supported)
    assert cookie.value not in json.dumps(msgs)
    # The stored supporter keys are HMACs: the device id is not in the table.
    conn = await asyncpg.connect(intake_settings.database_url)
    try:
        keys = [bytes(r["supporter"]) for r in await conn.fetch(
            "SELECT supporter FROM intake.supports")]
    finally:
        await conn.close()
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)


async def test_support_is_404_for_private_withdrawn_and_unknown_reports(
        client: TestClient) -> None:
    private = {mode: await post(client, privacy=mode) for mode in
               ("named", "confidential", "anonymous")}
    public = await post(client, visibility="public", privacy="anonymous")
    r = await client.post(f"/api/v1/complaints/{public['tracking_code']}/withdraw",
                          json={"secret": public["secret"]})
    assert r.status == 200
    unknown = await client.post("/api/v1/complaints/MDN-ZZZZ-ZZZZ/support")
    unknown_body = await unknown.json()
    assert unknown.status == 404 and unknown_body["error"]["code"] == "unknown_complaint"
    for code in [b["tracking_code"] for b in private.values()] + [public["tracking_code"]]:
        r = await client.post(f"/api/v1/complaints/{code}/support")
        assert r.status == 404
        # The same answer as an unknown code: it says nothing about which.
        assert await r.json() == unknown_body
    # Nothing was counted for any of them.
    for b in private.values():
        got = await (await client.get(f"/api/v1/complaints/{b['tracking_code']}")).json()
        assert "support_count" not in got


async def test_support_survives_a_restart_of_the_service(intake_settings: Settings) -> None:
    async with running_service("intake", intake_settings) as c:
        code = (await post(c, visibility="public"))["tracking_code"]
        r = await c.post(f"/api/v1/complaints/{code}/support")
        assert (await r.json())["counted"] is True
        # The device cookie came with this client's first answer (any of intake's).
        (token,) = [m.value for m in c.session.cookie_jar if m.key == device.COOKIE]
    # A new process (new app, new in-memory limiter), the same database and key.
    async with running_service("intake", intake_settings) as c:
        r = await c.post(f"/api/v1/complaints/{code}/support",
                         headers={"Cookie": f"{device.COOKIE}={token}"})
        assert await r.json() == {"tracking_code": code, "support_count": 1,
                                  "counted": False}
        c.session.cookie_jar.clear()
        r = await c.post(f"/api/v1/complaints/{code}/support")
        assert (await r.json())["support_count"] == 2


async def test_support_is_rate_limited_per_device_and_per_address(
        settings: Settings) -> None:
    limited = settings.with_(rate_limit_per_minute=10_000, support_rate_limit_per_minute=2,
                             support_address_rate_limit_per_minute=4)
    async with running_service("intake", limited) as c:
        codes = [(await post(c, visibility="public"))["tracking_code"] for _ in range(4)]
        # One device: two supports a minute.
        async with browser(c) as a:
            await support(a, codes[0])
            await support(a, codes[1])
            body = await support(a, codes[2], status=429)
            assert body["error"]["code"] == "rate_limited"
        # A client that drops its cookie every time is a new device each time: the
        # per-address limit (4 a minute, 2 counted above) stops it.
        await support(c, codes[3])
        c.session.cookie_jar.clear()
        await support(c, codes[3])
        c.session.cookie_jar.clear()
        r = await c.post(f"/api/v1/complaints/{codes[3]}/support")
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        got = (await (await c.get("/api/v1/reports?limit=10")).json())["reports"]
        assert {x["tracking_code"]: x["support_count"] for x in got}[codes[3]] == 2


async def test_support_form_on_the_public_page_works_without_javascript(
        client: TestClient) -> None:
    code = (await post(client, visibility="public"))["tracking_code"]
    r = await client.get(f"/reports/{code}")
    html = await r.text()
    assert r.status == 200 and 'data-count="0"' in html
    assert "Saya juga mengalami" in html
    csrf = csrf_of(html)
    # Without the CSRF token: refused, nothing counted.
    r = await client.post(f"/reports/{code}/support", data={})
    assert r.status == 403
    r = await client.post(f"/reports/{code}/support", data={"csrf": csrf},
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/reports/{code}"
    html = await (await client.get(f"/reports/{code}")).text()
    assert 'data-count="1"' in html and "Anda mendukung laporan ini" in html
    assert 'data-testid="support"' not in html  # the button is gone for this device
    # The same device posting again (a reload of the POST) counts nothing.
    r = await client.post(f"/reports/{code}/support", data={"csrf": csrf})
    assert 'data-count="1"' in await r.text()
    # In the list too.
    assert 'data-count="1"' in await (await client.get("/reports")).text()


# --- the public report page ---------------------------------------------------------------

async def test_public_report_page_shows_allow_listed_fields_and_public_timeline(
        client: TestClient) -> None:
    pub = {mode: await post(client, privacy=mode, visibility="public",
                            description=f"Jalan rusak parah mode {mode} di Jl. Merdeka.")
           for mode in ("named", "confidential", "anonymous")}
    # A private follow-up on one of them: never on a public surface.
    named = pub["named"]
    r = await client.post(f"/api/v1/complaints/{named['tracking_code']}/info",
                          json={"secret": named["secret"], "message": PRIVATE_NOTE})
    assert r.status == 200
    for mode, b in pub.items():
        r = await client.get(f"/reports/{b['tracking_code']}")
        html = await r.text()
        assert r.status == 200
        assert f"Jalan rusak parah mode {mode}" in html
        assert "Jl. Merdeka 1, Medan" in html  # the location the citizen gave
        for needle in (*PERSONAL, "Pak Darto", b["secret"]):
            assert needle not in html, (mode, needle)
        assert 'data-kind="submitted"' in html
        assert 'data-kind="info_added"' not in html
    # The API item is exactly the allow-list.
    items = (await (await client.get("/api/v1/reports")).json())["reports"]
    assert all(tuple(i) == visibility.PUBLIC_REPORT_FIELDS for i in items)
    assert all(set(i["overdue"]) == {"triage", "acknowledge", "resolve"} for i in items)
    text = json.dumps(items)
    assert "Pak Darto" not in text and not any(n in text for n in PERSONAL)

    # Private reports of every mode have no public page; it reads like an unknown code.
    for mode in ("named", "confidential", "anonymous"):
        b = await post(client, privacy=mode, description="Laporan khusus ZX-91 tentang pungli.")
        r = await client.get(f"/reports/{b['tracking_code']}")
        html = await r.text()
        assert r.status == 404 and "ZX-91" not in html
        assert 'data-testid="report-missing"' in html
        assert 'data-testid="support"' not in html


# --- the public list ----------------------------------------------------------------------

async def test_list_sorted_by_support_pages_and_bad_parameters(client: TestClient) -> None:
    codes = [(await post(client, visibility="public", privacy="anonymous",
                         description=f"Lampu jalan mati nomor {i} di gang."))["tracking_code"]
             for i in range(3)]
    wanted = {codes[0]: 2, codes[1]: 0, codes[2]: 1}
    for code, n in wanted.items():
        for _ in range(n):
            async with browser(client) as s:
                await support(s, code)
    seen, token = [], None
    while True:
        url = "/api/v1/reports?sort=support&limit=1" + (f"&page={token}" if token else "")
        body = await (await client.get(url)).json()
        seen += [(x["tracking_code"], x["support_count"]) for x in body["reports"]]
        token = body["next_page"]
        if token is None:
            break
    assert seen == [(codes[0], 2), (codes[2], 1), (codes[1], 0)]
    html = await (await client.get("/reports?sort=support&limit=1")).text()
    assert "sort=support" in html.split('rel="next"')[0].rsplit("href=", 1)[1]

    new_token = (await (await client.get("/api/v1/reports?limit=1")).json())["next_page"]
    for query, field in ((f"sort=support&page={new_token}", "page"),
                         ("sort=popular", "sort"), ("categroy=sampah", "categroy"),
                         ("near=3.5", "near"), ("near=abc,def", "near"),
                         ("near=3.5,98.6&radius_km=-1", "radius_km")):
        r = await client.get(f"/api/v1/reports?{query}")
        body = await r.json()
        assert r.status == 422, query
        assert body["error"]["details"]["fields"][0]["field"] == field, query
    r = await client.get("/reports?categroy=sampah")
    assert r.status == 422


async def test_near_filter_and_radius_cap(client: TestClient,
                                          intake_settings: Settings) -> None:
    medan = await post(client, visibility="public", privacy="anonymous")  # 3.59, 98.67
    sorong = await post(client, visibility="public", privacy="anonymous", region="SRG",
                        location={"lat": -0.88, "lon": 131.25, "address": "Jl. Basuki"})
    far = await post(client, visibility="public", privacy="anonymous",
                     location={"lat": 3.70, "lon": 98.67, "address": "Belawan"})  # ~12 km
    got = await (await client.get("/api/v1/reports?near=3.59,98.67")).json()
    assert [x["tracking_code"] for x in got["reports"]] == [medan["tracking_code"]]
    got = await (await client.get("/api/v1/reports?near=3.59,98.67&radius_km=20")).json()
    assert {x["tracking_code"] for x in got["reports"]} == {medan["tracking_code"],
                                                           far["tracking_code"]}
    # A radius of 10,000 km is capped, not honoured: Sorong stays out.
    got = await (await client.get("/api/v1/reports?near=3.59,98.67&radius_km=10000")).json()
    assert sorong["tracking_code"] not in {x["tracking_code"] for x in got["reports"]}
    catalog = load_catalog(intake_settings.catalog)
    q = reports.parse_query(catalog, {"near": "3.59,98.67", "radius_km": "10000"})
    assert q.radius_km == reports.MAX_RADIUS_KM


async def test_support_sorted_pages_are_one_indexed_walk(client: TestClient,
                                                          settings: Settings) -> None:
    after = (3, datetime.now(UTC), "MDN-ZZZZ-ZZZZ")
    conn = await asyncpg.connect(settings.database_url)
    try:
        for q in (reports.ReportQuery(sort="support"),
                  reports.ReportQuery(sort="support", region="MDN", after=after),
                  reports.ReportQuery(sort="support", status="routed", after=after)):
            sql, args = reports.page_sql(q)
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
            assert "support" in plan and "complaints_public" in plan, plan
            assert "Sort" not in plan and "Seq Scan" not in plan, plan
    finally:
        await conn.close()


# --- similar reports ----------------------------------------------------------------------

async def test_similar_reports_are_open_public_same_region_and_category(
        client: TestClient) -> None:
    hole = await post(client, visibility="public", privacy="anonymous", category="jalan-rusak",
                      description="Jalan berlubang besar di depan SD Negeri 5, "
                                  "motor sering jatuh.")
    other = await post(client, visibility="public", privacy="anonymous",
                       category="jalan-rusak",
                       description="Aspal jalan mengelupas dekat pasar ikan.")
    await post(client, privacy="anonymous", category="jalan-rusak",
               description="Jalan berlubang besar di depan SD Negeri 5, tertutup.")
    await post(client, visibility="public", privacy="anonymous", category="sampah",
               description="Jalan berlubang penuh sampah di depan SD Negeri 5.")
    await post(client, visibility="public", privacy="anonymous", category="jalan-rusak",
               region="SRG", location={"lat": -0.88, "lon": 131.25},
               description="Jalan berlubang besar di depan SD Negeri 5 Sorong.")
    gone = await post(client, visibility="public", privacy="anonymous",
                      category="jalan-rusak",
                      description="Jalan berlubang besar di depan SD Negeri 5 lagi.")
    r = await client.post(f"/api/v1/complaints/{gone['tracking_code']}/withdraw",
                          json={"secret": gone["secret"]})
    assert r.status == 200
    r = await client.get("/api/v1/reports/similar", params={
        "region": "MDN", "category": "jalan-rusak",
        "text": "Ada lubang besar, jalan berlubang depan SD Negeri 5"})
    body = await r.json()
    assert r.status == 200, body
    got = [x["tracking_code"] for x in body["reports"]]
    assert got[0] == hole["tracking_code"]
    assert other["tracking_code"] not in got or got.index(other["tracking_code"]) > 0
    assert gone["tracking_code"] not in got
    assert len(got) <= 5
    assert all(tuple(x) == visibility.PUBLIC_REPORT_FIELDS for x in body["reports"])
    assert "tertutup" not in await r.text()
    for params, field in (({"region": "XXX", "category": "jalan-rusak", "text": "a"},
                           "region"),
                          ({"region": "MDN", "category": "nope", "text": "jalan"},
                           "category"),
                          ({"region": "MDN", "category": "jalan-rusak"}, "text"),
                          ({"region": "MDN", "category": "jalan-rusak", "text": "jalan",
                            "colour": "red"}, "colour")):
        r = await client.get("/api/v1/reports/similar", params=params)
        assert r.status == 422
        assert (await r.json())["error"]["details"]["fields"][0]["field"] == field


# --- the router shows the count and sorts by it -------------------------------------------

async def test_router_keeps_the_largest_count_and_sorts_the_queue_by_it(
        router_settings: Settings) -> None:  # noqa: F811 - the fixture
    settings = router_settings
    await create_users(settings.database_url or "")
    quiet = submitted("MDN", "asn-pungli", "Diminta uang untuk tanda tangan surat.")
    popular = submitted("MDN", "asn-pungli", "Pungutan liar di loket KTP setiap hari.")
    bootstrap = settings.kafka_bootstrap or ""
    async with running_service("router", settings) as client:
        for env in (popular, quiet):
            await send(bootstrap, env)
        token = await login(client, "mdn.inspektorat")
        code = popular.payload["tracking_code"]
        await wait_ticket(client, token, code)
        # 3, then a late 2 (reordered or redelivered): the count stays 3.
        for n in (1, 3, 2):
            await send(bootstrap, event(ComplaintSupported(support_count=n),
                                        popular.complaint_id, "intake"))
        await send(bootstrap, event(ComplaintSupported(support_count=1),
                                    quiet.complaint_id, "intake"))
        await wait_ticket(client, token, quiet.payload["tracking_code"], support_count=1)
        t = await wait_ticket(client, token, code, support_count=3)
        r = await client.get("/api/v1/tickets", params={"sort": "support"},
                             headers={"Authorization": f"Bearer {token}"})
        tickets = (await r.json())["tickets"]
        assert [x["tracking_code"] for x in tickets][:2] == [code,
                                                             quiet.payload["tracking_code"]]
        r = await client.get(f"/api/v1/tickets/{t['id']}",
                             headers={"Authorization": f"Bearer {token}"})
        detail = await r.json()
        assert detail["support_count"] == 3
        # A count is not a step of the case: no timeline entry per support.
        assert not any(e["kind"] == "complaint.supported" for e in detail["timeline"])


async def test_near_pages_read_the_point_index(client: TestClient, settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        sql, args = reports.page_sql(reports.ReportQuery(region="MDN", near=(3.59, 98.67)))
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
        assert "complaints_public" in plan and "Seq Scan" not in plan, plan
    finally:
        await conn.close()
