"""What puts a case in the panel's review queue (disputes, ratings of 1 or 2, the
random audit sample of resolved cases), redelivery changing nothing, and the panel
console's access rules (login page, 403 for other roles, CSRF on its forms)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from awasi.identity import add_user
from awasi.settings import Settings
from services.oversight import panel
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from services.oversight.domain import audit_sampled
from tests.support.oversight import (
    MONDAY_9,
    bearer,
    feed,
    feedback,
    login,
    make_ctx,
    new_cid,
    open_pool,
    pool_of,
    resolved,
    routed,
    submitted,
)
from tests.support.services import running_app


async def login_csrf(client: TestClient) -> str:
    """The panel login form's CSRF token (its cookie goes into the client's jar)."""
    page = await (await client.get("/panel/login")).text()
    return page.split('name="csrf_token" value="')[1].split('"')[0]


pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
H = timedelta(hours=1)


async def test_disputes_low_ratings_and_the_audit_sample_enter_the_queue(
    database_url: str,
) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        share = ctx.catalog.audit_sample_share
        sampled = next(f"audit{i}" for i in range(1000) if audit_sampled(f"audit{i}", share))
        unsampled = [f"plain{i}" for i in range(1000)
                     if not audit_sampled(f"plain{i}", share)][:4]
        fine, unhappy, disputing, mild = unsampled
        for cid in (sampled, fine, unhappy, disputing, mild):
            await feed(pool, ctx, submitted(cid, MONDAY_9),
                       routed(cid, MONDAY_9, MONDAY_9 + 48 * H, MONDAY_9 + 96 * H),
                       resolved(cid, MONDAY_9 + H))
        # The items enter at different times (the sample at the resolution, the rest
        # when the feedback arrives), the dispute fed before the older low rating, so
        # arrival order cannot pass for age order.
        clock.set(MONDAY_9 + 2 * H)
        await feed(pool, ctx, feedback(disputing, clock.now(), None, dispute=True))
        clock.set(MONDAY_9 + H)
        rating_1 = feedback(unhappy, clock.now(), 1)
        await feed(pool, ctx, feedback(fine, clock.now(), 5), rating_1,
                   feedback(mild, clock.now(), 3))
        await feed(pool, ctx, rating_1)  # a redelivery adds nothing
        clock.set(MONDAY_9 + 5 * H)
        async with pool.acquire() as conn:
            items = await panel.review_queue(conn, clock.now())
        reasons = {i["complaint_id"]: [r["reason"] for r in i["reasons"]] for i in items}
        assert reasons == {sampled: ["audit_sample"], unhappy: ["low_rating"],
                           disputing: ["dispute"]}
        # Oldest first; each with its age.
        assert [(i["complaint_id"], i["age_seconds"]) for i in items] == [
            (sampled, 5 * 3600), (unhappy, 4 * 3600), (disputing, 3 * 3600)]
        # The share of the sample is the catalog's, give or take chance.
        hits = sum(audit_sampled(new_cid(), share) for _ in range(4000))
        assert abs(hits / 4000 - share) < 0.03
    finally:
        await pool.close()


async def test_panel_console_access_and_csrf(settings: Settings) -> None:
    clock = ManualClock(MONDAY_9)
    async with running_app(create_app(settings, clock=clock)) as client:
        r = await client.get("/panel", allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/panel/login")
        pool = pool_of(client)
        await add_user(pool, username="kepala", password="rahasia-123", role="head",
                       agency="MDN-DISDUKCAPIL")
        # Without the login form's CSRF token (double submit) nothing is checked.
        r = await client.post("/panel/login", data={"username": "kepala",
                                                   "password": "rahasia-123"},
                              allow_redirects=False)
        assert r.status == 403
        assert not any("awasi_session=" in c for c in r.headers.getall("Set-Cookie", []))
        r = await client.post("/panel/login", data={"username": "kepala",
                                                   "password": "rahasia-123",
                                                   "csrf_token": await login_csrf(client)},
                              allow_redirects=False)
        assert r.status == 403  # a head is not a panel member
        r = await client.post("/panel/login", data={"username": "kepala", "password": "salah",
                                                   "csrf_token": await login_csrf(client)},
                              allow_redirects=False)
        assert r.status == 401
        head_token = await login(client, "kepala2", "head", agency="MDN-DISDUKCAPIL")
        r = await client.get("/panel", headers=bearer(head_token), allow_redirects=False)
        assert r.status == 403

        await add_user(pool, username="pengawas", password="rahasia-123", role="panel")
        r = await client.post("/panel/login", data={"username": "pengawas",
                                                   "password": "rahasia-123",
                                                   "csrf_token": await login_csrf(client),
                                                   "next": "https://evil.example/"},
                              allow_redirects=False)
        assert r.status == 303 and r.headers["Location"] == "/panel"
        # The session cookie is now in the client's jar: a form post without the CSRF
        # token is refused.
        ctx, _ = make_ctx(clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9, "AWS-CSRF01"),
                   routed(cid, MONDAY_9, MONDAY_9 + 48 * H, None, code="AWS-CSRF01"),
                   resolved(cid, MONDAY_9 + H))  # reopening needs a resolution
        r = await client.post("/panel/cases/AWS-CSRF01/reopen", data={"reason": "x"},
                              allow_redirects=False)
        assert r.status == 403
        page = await (await client.get("/panel/cases/AWS-CSRF01")).text()
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        r = await client.post("/panel/cases/AWS-CSRF01/reopen",
                              data={"reason": "Belum beres", "csrf_token": token},
                              allow_redirects=False)
        assert r.status == 303
        n = await pool.fetchval("SELECT count(*) FROM oversight.outbox"
                                " WHERE event_type = 'case.reopened'")
        assert n == 1
