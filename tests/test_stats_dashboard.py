"""Statistics with a known set of cases: every figure computed by hand here, a
disputed resolution never counted as resolved, the sample-size floor applied; the
dashboard, CSV and JSON show the same figures; no personal data on the page."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import asyncpg
import pytest

from awasi.events.payloads import ComplaintNeedsTriage, Deadlines
from awasi.settings import Settings
from services.oversight import findings, panel, stats
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from services.oversight.scheduler import Scheduler
from tests.support.oversight import (
    AGENCY,
    MONDAY_9,
    OTHER_AGENCY,
    acknowledged,
    env,
    feed,
    feedback,
    make_ctx,
    open_pool,
    resolved,
    routed,
    submitted,
)
from tests.support.services import running_app

T0 = MONDAY_9
ACK_BY = T0 + timedelta(days=2)
RESOLVE_BY = T0 + timedelta(days=9)  # Wednesday 2 December, 09:00 WIB
NOW = T0 + timedelta(days=12)
H = timedelta(hours=1)


async def load_known_cases(pool: asyncpg.Pool) -> ManualClock:
    """Agency A (MDN-DISDUKCAPIL): c1..c6; agency B (MDN-BKPSDM): c7; c8 waits in
    MDN's triage queue. See each line for what it contributes."""
    ctx, clock = make_ctx()
    scheduler = Scheduler(pool, ctx.catalog, clock)
    c = {i: f"case{i:04d}" for i in range(1, 9)}
    for i in range(1, 7):
        await feed(pool, ctx, submitted(c[i], T0), routed(c[i], T0, ACK_BY, RESOLVE_BY))
    await feed(pool, ctx, submitted(c[7], T0),
               routed(c[7], T0, ACK_BY, RESOLVE_BY, agency=OTHER_AGENCY))
    await feed(pool, ctx, submitted(c[8], T0), env(ComplaintNeedsTriage(
        tracking_code="AWS-TRIAGE", region="MDN", category="adminduk-ktp",
        deadlines=Deadlines(triage_by=T0 + timedelta(days=3))), c[8], T0))
    # Acknowledged after 1, 2, 3, 4, 5 hours (c1..c5); c6 never; c7 after 6 hours.
    for i in range(1, 6):
        await feed(pool, ctx, acknowledged(c[i], T0 + i * H, RESOLVE_BY))
    await feed(pool, ctx, acknowledged(c[7], T0 + 6 * H, RESOLVE_BY, agency=OTHER_AGENCY))
    # Resolved on time: c1 (10 h), c2 (20 h), c3 (30 h, later disputed), c7 (24 h).
    await feed(pool, ctx, resolved(c[1], T0 + 10 * H), resolved(c[2], T0 + 20 * H),
               resolved(c[3], T0 + 30 * H), resolved(c[7], T0 + 24 * H, agency=OTHER_AGENCY))
    # The scheduler runs past the deadlines: breaches of c6 (acknowledge), c4, c5 and
    # c6 (resolve) for A, and c8's triage deadline (no agency).
    for day in range(1, 11):
        clock.set(T0 + timedelta(days=day, seconds=1))
        await scheduler.sweep()
    # c4 resolved late (day 10), after its breach.
    await feed(pool, ctx, resolved(c[4], T0 + timedelta(days=10)))
    # Ratings: c1 5, c2 4, c3 1 with a dispute, c4 2; c7 3.
    await feed(pool, ctx, feedback(c[1], T0 + timedelta(days=11), 5),
               feedback(c[2], T0 + timedelta(days=11), 4),
               feedback(c[3], T0 + timedelta(days=11), 1, dispute=True),
               feedback(c[4], T0 + timedelta(days=11), 2),
               feedback(c[7], T0 + timedelta(days=11), 3))
    clock.set(NOW)
    # Findings count once a second member confirms them (the two-person rule).
    for code, body in (
        ("AWS-SE0003", panel.FindingIn(
            outcome="maladministration", maladministration_type="undue_delay",
            recommendation="Tetapkan SOP penyelesaian", published=True)),
        ("AWS-SE0004", panel.FindingIn(
            outcome="inconclusive", recommendation="Rahasia internal", published=False)),
    ):
        drafted = await findings.draft(pool, code, body, "pengawas1", NOW)
        await findings.confirm(pool, drafted["id"], "pengawas2", NOW)
    # A published draft nobody confirmed is neither counted nor shown.
    await findings.draft(pool, "AWS-SE0005", panel.FindingIn(
        outcome="maladministration", maladministration_type="illegal_fees",
        recommendation="Draf yang belum dikonfirmasi", published=True), "pengawas1", NOW)
    return clock


def rate(value: float | None, n: int, hidden: bool) -> dict:
    return {"value": value, "n": n, "hidden": hidden}


# Computed by hand from load_known_cases (the floor is the demo catalog's 5 cases).
EXPECTED_A = {
    "agency": AGENCY, "region": "MDN",
    "received": 6,
    "resolved": 3,          # c1, c2, c4; c3's resolution is disputed
    "breaches": 4,          # c6 acknowledge; c4, c5, c6 resolve
    "disputes": 1,
    "published_findings": 1,
    # acknowledged after 1, 2, 3, 4, 5 h: median 3 h over 5 cases (shown)
    "median_hours_to_acknowledge": rate(3.0, 5, False),
    # resolved (not disputed): 3 cases, under the floor of 5: hidden
    "median_hours_to_resolve": rate(None, 3, True),
    # all 6 due by now; on time and standing: c1, c2 -> 2/6
    "share_resolved_within_deadline": rate(0.333, 6, False),
    # ratings 5, 4, 1, 2: 4 cases, hidden
    "average_rating": rate(None, 4, True),
}
EXPECTED_B = {
    "agency": OTHER_AGENCY, "region": "MDN", "received": 1, "resolved": 1, "breaches": 0,
    "disputes": 0, "published_findings": 0,
    "median_hours_to_acknowledge": rate(None, 1, True),
    "median_hours_to_resolve": rate(None, 1, True),
    "share_resolved_within_deadline": rate(None, 1, True),
    "average_rating": rate(None, 1, True),
}
EXPECTED_MDN = {
    "region": "MDN",
    "received": 8,          # c1..c8, the triage case included
    "resolved": 4,          # c1, c2, c4, c7
    "breaches": 5,          # A's 4 and c8's triage deadline
    "disputes": 1,
    "published_findings": 1,
    # acknowledged after 1..6 h: median 3.5 h over 6
    "median_hours_to_acknowledge": rate(3.5, 6, False),
    "median_hours_to_resolve": rate(None, 4, True),
    # due: c1..c7 (c8 has no resolution deadline); on time and standing: c1, c2, c7
    "share_resolved_within_deadline": rate(0.429, 7, False),
    # ratings 5, 4, 1, 2, 3: mean 3.0 over 5 (shown)
    "average_rating": rate(3.0, 5, False),
}


def subset(actual: dict, expected: dict) -> dict:
    return {k: actual[k] for k in expected}


async def test_every_figure_matches_the_hand_count(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        clock = await load_known_cases(pool)
        ctx, _ = make_ctx()
        async with pool.acquire() as conn:
            s = await stats.compute(conn, ctx.catalog, clock.now())
        by_agency = {a["agency"]: a for a in s.agencies}
        assert set(by_agency) == {AGENCY, OTHER_AGENCY}
        assert subset(by_agency[AGENCY], EXPECTED_A) == EXPECTED_A
        assert subset(by_agency[OTHER_AGENCY], EXPECTED_B) == EXPECTED_B
        assert [subset(r, EXPECTED_MDN) for r in s.regions] == [EXPECTED_MDN]
        assert s.min_cases == 5
    finally:
        await pool.close()


async def test_disputed_resolution_is_not_resolved_until_resolved_again(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        cid = "disputed01"
        await feed(pool, ctx, submitted(cid, T0), routed(cid, T0, ACK_BY, RESOLVE_BY),
                   resolved(cid, T0 + H))
        async with pool.acquire() as conn:
            assert (await stats.compute(conn, ctx.catalog, T0 + 2 * H)).agencies[0]["resolved"] == 1
        await feed(pool, ctx, feedback(cid, T0 + 2 * H, None, dispute=True))
        async with pool.acquire() as conn:
            a = (await stats.compute(conn, ctx.catalog, T0 + 3 * H)).agencies[0]
        assert a["resolved"] == 0
        assert a["disputes"] == 1
        assert a["share_resolved_within_deadline"]["n"] == 1
    finally:
        await pool.close()


@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
async def test_dashboard_csv_and_json_show_the_same_figures(settings: Settings) -> None:
    assert settings.database_url
    pool = await open_pool(settings.database_url)
    try:
        clock = await load_known_cases(pool)
    finally:
        await pool.close()
    async with running_app(create_app(settings, clock=clock)) as client:
        r = await client.get("/api/v1/stats/agencies")
        body = await r.json()
        a = next(x for x in body["agencies"] if x["agency"] == AGENCY)
        assert subset(a, EXPECTED_A) == EXPECTED_A

        r = await client.get("/api/v1/stats/agencies.csv")
        assert r.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await r.text())))
        row = next(x for x in rows if x["scope"] == "agency" and x["code"] == AGENCY)
        assert row["received"] == "6" and row["breaches"] == "4" and row["resolved"] == "3"
        assert row["median_hours_to_acknowledge"] == "3.0"
        assert row["median_hours_to_resolve"] == "" and row["median_hours_to_resolve_n"] == "3"
        assert row["share_resolved_within_deadline"] == "0.333"
        region = next(x for x in rows if x["scope"] == "region")
        assert region["average_rating"] == "3.0" and region["received"] == "8"

        r = await client.get("/", headers={"Accept-Language": "id-ID,id;q=0.9"})
        assert r.status == 200
        html = await r.text()
        assert 'lang="id"' in html
        assert "Persentase selesai tepat waktu" in html
        assert "disembunyikan (n=3)" in html          # the hidden median, its sample size
        assert "33% (n=6)" in html
        assert "Tetapkan SOP penyelesaian" in html     # the published finding
        assert "Rahasia internal" not in html          # the unpublished one
        assert "Draf yang belum dikonfirmasi" not in html  # a draft alone
        svgs = re.findall(r"<svg.*?</svg>", html, re.S)
        assert len(svgs) == 6
        assert all('class="bar"' in s for s in svgs[:1])
        assert "terlalu sedikit kasus untuk ditampilkan (n=3)" in html
        # No personal data: no reporter reference, no description of a complaint.
        assert "ref-case" not in html and "KTP belum jadi" not in html

        r = await client.get("/?lang=en")
        html = await r.text()
        assert "Share resolved within the deadline" in html and "hidden (n=3)" in html
        assert "awasi_lang=en" in r.headers.get("Set-Cookie", "")


def test_chart_labels_tell_agencies_of_the_same_name_apart() -> None:
    # Every city has an "Inspektorat": the dashboard's bars name the region too then.
    from services.oversight.pages import bar_chart, with_chart_labels

    rows = with_chart_labels([
        {"short_name": "Inspektorat", "region": "MDN", "received": 3},
        {"short_name": "Inspektorat", "region": "SRG", "received": 1},
        {"short_name": "DLH", "region": "MDN", "received": 2},
    ])
    chart = bar_chart("Complaints received", rows, "received", "n")
    labels = [b["label"] for b in chart["bars"]]
    assert labels == ["Inspektorat · MDN", "Inspektorat · SRG", "DLH"]
    assert len(set(labels)) == len(labels)
