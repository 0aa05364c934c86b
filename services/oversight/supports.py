"""Supports in the period statistics: how many people a problem touches.

Write side: ``apply`` takes intake's ``complaint.supported`` (the report's new total,
nothing about the supporter) inside the consumer's transaction. The increment over
the largest total seen for the complaint (``case_supports``) is added to
``supports_daily`` under the region's local day of the support, the agency that had
the case then ('' while in triage) and its category. A redelivered or late event
(a total not above the one seen) adds nothing.

Read side: ``period_figures`` sums a period's days per agency and category (one range
scan of the region's days), for the period report and ``GET /api/v1/stats/supports``.
Counts, not rates: no sample-size rule hides them, and nothing in them is personal.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from awasi.catalog import Catalog
from awasi.events.envelope import Envelope
from awasi.periods import Period, local_day
from awasi.web import keys as web_keys
from awasi.web.responses import json_response
from services.oversight import keys

EVENT_TYPES = frozenset({"complaint.supported"})
NO_AGENCY = ""


async def apply(conn: asyncpg.Connection, catalog: Catalog, env: Envelope) -> None:
    """Count the supports ``env`` adds (see the module's text). A complaint without a
    case here yet (impossible on one topic in key order) counts nothing."""
    total = int(env.payload["support_count"])
    case = await conn.fetchrow("SELECT region, agency, category FROM oversight.cases"
                               " WHERE complaint_id = $1", env.complaint_id)
    if case is None:
        return
    # The row lock orders two consumers of the same complaint (a rebalance).
    before = await conn.fetchval(
        "INSERT INTO oversight.case_supports AS s (complaint_id, support_count)"
        " VALUES ($1, 0) ON CONFLICT (complaint_id) DO UPDATE"
        " SET support_count = s.support_count RETURNING support_count", env.complaint_id)
    if total <= before:
        return
    await conn.execute("UPDATE oversight.case_supports SET support_count = $2"
                        " WHERE complaint_id = $1", env.complaint_id, total)
    region = catalog.regions.get(case["region"])
    day = local_day(env.occurred_at, region.timezone if region else "Asia/Jakarta")
    await conn.execute(
        "INSERT INTO oversight.supports_daily (region, day, agency, category, supports)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (region, day, agency, category)"
        " DO UPDATE SET supports = supports_daily.supports + EXCLUDED.supports",
        case["region"], day, case["agency"] or NO_AGENCY, case["category"] or "",
        total - before)


async def period_figures(conn: asyncpg.Connection | asyncpg.Pool, region: str,
                         period: Period, agency: str | None = None) -> dict[str, Any]:
    """The supports counted in ``period`` (local days of ``region``): ``total`` and
    ``by_agency_category`` (most supported first), of one agency if given."""
    rows = await conn.fetch(
        "SELECT agency, category, sum(supports)::bigint AS supports"
        " FROM oversight.supports_daily WHERE region = $1 AND day >= $2 AND day <= $3"
        " AND ($4::text IS NULL OR agency = $4)"
        " GROUP BY agency, category ORDER BY 3 DESC, 1, 2",
        region, period.first_day, period.last_day, agency)
    return {"total": sum(int(r["supports"]) for r in rows),
            "by_agency_category": [{"agency": r["agency"] or None, "category": r["category"],
                                    "supports": int(r["supports"])} for r in rows]}


async def get_stats(request: web.Request) -> web.Response:
    """``GET /api/v1/stats/supports?region=&period=``: the period's supports per
    agency and category, and the previous period's total."""
    from services.oversight.evaluation import region_and_period  # it imports us

    region, period = region_and_period(request)
    pool = request.app[web_keys.POOL]
    now = await period_figures(pool, region, period)
    before = await period_figures(pool, region, period.previous())
    catalog = request.app[keys.CATALOG]
    for row in now["by_agency_category"]:
        a = catalog.agencies.get(row["agency"] or "")
        row["agency_name"] = a.short_name if a else None
    return json_response({"region": region, "period": period.code, **now,
                          "previous": {"period": period.previous().code,
                                       "total": before["total"]}})


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    api.add(app.router, "GET", "/api/v1/stats/supports", get_stats, tags=["stats"],
            summary="Supports of public reports (\"saya juga mengalami\") counted in a "
                    "period, per agency and category: how many people a problem touches",
            parameters=[{"name": "region", "in": "query", "required": True,
                         "schema": {"type": "string"}},
                        {"name": "period", "in": "query", "required": False,
                         "schema": {"type": "string"}}],
            responses={200: {"type": "object"}}, errors=(422,))
