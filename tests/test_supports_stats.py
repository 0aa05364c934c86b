"""Supports in the period statistics (services/oversight/supports.py): oversight counts
intake's ``complaint.supported`` totals per agency, category and local day in the
consumer's transaction (a late or repeated total adds nothing), and shows them in the
period report (JSON, page, PDF) and ``GET /api/v1/stats/supports``."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta

import pytest
from pypdf import PdfReader

from awasi.events import topics
from awasi.events.payloads import ComplaintSupported
from awasi.settings import Settings
from services.oversight.app import create_app
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    AGENCY,
    WIB,
    env,
    eventually,
    pool_of,
    routed,
    send,
    submitted,
)
from tests.support.services import running_app

pytestmark = [
    pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"),
]

NOW = datetime(2026, 10, 5, 10, 0, tzinfo=WIB)
IN_Q3 = datetime(2026, 8, 3, 9, 0, tzinfo=WIB)
IN_Q2 = datetime(2026, 5, 4, 9, 0, tzinfo=WIB)
# The last evening of Q3 in Medan's own time: counted in Q3. Two in the night of
# 1 October WIB is still 30 September in UTC: counted in Q4 (the region's local day).
LAST_EVENING_Q3 = datetime(2026, 9, 30, 23, 30, tzinfo=WIB)
FIRST_NIGHT_Q4 = datetime(2026, 10, 1, 2, 0, tzinfo=WIB)


def supported(cid: str, total: int, at: datetime) -> object:
    return env(ComplaintSupported(support_count=total), cid, at, producer="intake")


async def test_supports_per_agency_and_category_in_the_period_report_and_stats(
        settings: Settings) -> None:
    async with running_app(create_app(settings, clock=ManualClock(NOW))) as client:
        pool = pool_of(client)
        routed_cid, triage_cid, old_cid = (str(uuid.uuid4()) for _ in range(3))
        code = f"AWS-{routed_cid[:6].upper()}"
        await send(settings, topics.INTAKE, submitted(routed_cid, IN_Q3, code))
        await send(settings, topics.ROUTER, routed(routed_cid, IN_Q3, None, None, code=code))
        await send(settings, topics.INTAKE, submitted(triage_cid, IN_Q3))  # never routed
        await send(settings, topics.INTAKE, submitted(old_cid, IN_Q2))
        await eventually(lambda: pool.fetchval(
            "SELECT agency FROM oversight.cases WHERE complaint_id = $1", routed_cid),
            what="routed")
        # Totals as intake sends them, one repeated and one late (lower): 4 counted in
        # Q3, the fifth in Q4.
        for total, at in ((1, IN_Q3), (3, IN_Q3 + timedelta(days=1)),
                          (2, IN_Q3 + timedelta(days=2)), (3, IN_Q3 + timedelta(days=3)),
                          (4, LAST_EVENING_Q3), (5, FIRST_NIGHT_Q4)):
            await send(settings, topics.INTAKE, supported(routed_cid, total, at))
        await send(settings, topics.INTAKE, supported(triage_cid, 2, IN_Q3))
        await send(settings, topics.INTAKE, supported(old_cid, 1, IN_Q2))
        await eventually(lambda: pool.fetchval(
            "SELECT sum(supports) = 8 FROM oversight.supports_daily"), what="supports")
        # Each support event still on the case's timeline, as before.
        assert await pool.fetchval(
            "SELECT count(*) FROM oversight.timeline WHERE complaint_id = $1"
            " AND event_type = 'complaint.supported'", routed_cid) == 6

        r = await client.get("/api/v1/stats/supports", params={"region": "MDN",
                                                                "period": "2026-Q3"})
        body = await r.json()
        assert r.status == 200, body
        assert body["total"] == 6 and body["previous"] == {"period": "2026-Q2", "total": 1}
        assert body["by_agency_category"] == [
            {"agency": AGENCY, "category": "adminduk-ktp", "supports": 4,
             "agency_name": "Disdukcapil"},
            {"agency": None, "category": "adminduk-ktp", "supports": 2, "agency_name": None}]
        # Counts only: no complaint, code or supporter.
        text = await r.text()
        assert routed_cid not in text and code not in text
        r = await client.get("/api/v1/stats/supports", params={"region": "XXX"})
        err = await r.json()
        assert r.status == 422 and "region" in str(err["error"]["details"])

        r = await client.get("/api/v1/reports/MDN/2026-Q3")
        data = await r.json()
        assert data["supports"]["total"] == 6 and data["supports"]["previous_total"] == 1
        assert data["supports"]["change"] == 5
        r = await client.get("/api/v1/reports/MDN/2026-Q3", params={"agency": AGENCY})
        assert r.status == 200 and (await r.json())["supports"]["total"] == 4
        r = await client.get("/reports/MDN/2026-Q3")
        html = await r.text()
        assert 'id="supports"' in html and "Dukungan dalam periode: 6" in html
        r = await client.get("/reports/MDN/2026-Q3.pdf")
        assert r.status == 200
        pdf = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(await r.read())).pages)
        assert "Dukungan dalam periode: 6" in " ".join(pdf.split())
