"""The evaluation side of oversight: the public satisfaction results
(``GET /api/v1/satisfaction?region=&period=``), the dashboard's satisfaction section,
and the consumer hook that feeds the evaluation tables.

``with_evaluation(handler, ctx)`` wraps the case consumer's handler: survey answers go
to ``satisfaction.apply`` (they are not cases: they stay off the case timeline and its
chain), recommendation events to ``recommendations.apply`` (on the chain, but not
cases either); supports are counted by ``supports.apply`` and go on to the case
handler too; every other event goes on to the case handler unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from awasi import i18n
from awasi.events.envelope import Envelope
from awasi.periods import BadPeriod, Period, current_quarter
from awasi.web import keys as web_keys
from awasi.web.errors import ValidationFailed
from awasi.web.responses import json_response
from services.oversight import keys, recommendations, satisfaction, supports
from services.oversight.domain import Context
from services.oversight.errors import field_error

DASHBOARD_RECOMMENDATIONS = 50

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]


def with_evaluation(handler: Handler, ctx: Context) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        if envelope.type in satisfaction.EVENT_TYPES:
            await satisfaction.apply(conn, ctx.catalog, envelope)
        elif envelope.type in recommendations.EVENT_TYPES:
            await recommendations.apply(conn, envelope, ctx.clock.now())
        else:
            if envelope.type in supports.EVENT_TYPES:
                # Counted for the period statistics, and still on the case's timeline.
                await supports.apply(conn, ctx.catalog, envelope)
            await handler(conn, envelope)

    return handle


def region_and_period(request: web.Request) -> tuple[str, Period]:
    """``region`` (required, a catalog code) and ``period`` (default: the region's
    current quarter) from the query; 422 naming the parameter otherwise."""
    catalog = request.app[keys.CATALOG]
    region = (request.query.get("region") or "").strip()
    if not region:
        raise field_error("region", "a region code is required, e.g. MDN")
    if region not in catalog.regions:
        raise field_error("region", f"unknown region {region!r}")
    raw = (request.query.get("period") or "").strip()
    if not raw:
        now = request.app[keys.CLOCK].now()
        return region, current_quarter(now, catalog.regions[region].timezone)
    try:
        return region, Period.parse(raw)
    except BadPeriod as e:
        raise field_error("period", str(e)) from e


def locale_of(request: web.Request) -> str:
    return i18n.normalize(request.query.get("lang")) or i18n.DEFAULT


async def get_satisfaction(request: web.Request) -> web.Response:
    region, period = region_and_period(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        out = await satisfaction.results(conn, request.app[keys.CATALOG], region, period,
                                         locale_of(request))
    return json_response(out)


async def dashboard_section(request: web.Request, conn: asyncpg.Connection,
                            gettext: Callable[[str], str]) -> dict[str, Any]:
    """The dashboard's satisfaction section: per agency of the chosen region (first
    region by default) and period (its current quarter by default). A bad filter shows
    the default with a message instead of failing the whole dashboard."""
    catalog = request.app[keys.CATALOG]
    locale = i18n.current_locale()
    error = None
    try:
        if not request.query.get("region"):
            region = next(iter(catalog.regions))
            raw = (request.query.get("period") or "").strip()
            now = request.app[keys.CLOCK].now()
            period = (Period.parse(raw) if raw else
                      current_quarter(now, catalog.regions[region].timezone))
        else:
            region, period = region_and_period(request)
    except (ValidationFailed, BadPeriod):
        error = gettext("Unknown region or period; showing the current quarter.")
        region = next(iter(catalog.regions))
        period = current_quarter(request.app[keys.CLOCK].now(),
                                 catalog.regions[region].timezone)
    data = await satisfaction.results(conn, catalog, region, period, locale)
    recs = await recommendations.listing(conn, region=region, limit=DASHBOARD_RECOMMENDATIONS)
    for r in recs:
        r["agency_name"] = catalog.agencies[r["agency"]].short_name \
            if r["agency"] in catalog.agencies else r["agency"]
        r["status_label"] = gettext(recommendations.STATUS_LABELS[r["status"]])
        for h in r["history"]:
            h["status_label"] = gettext(recommendations.STATUS_LABELS[h["status"]])
    return {"data": data, "error": error, "regions": list(catalog.regions.values()),
            "recommendations": recs}


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    api.add(app.router, "GET", "/api/v1/satisfaction", get_satisfaction, tags=["evaluation"],
            summary="Public satisfaction index (IKM, PermenPAN-RB 14/2017) per service unit, "
                    "agency and region for a period (2026, 2026-H2, 2026-Q4; default the "
                    "current quarter) in the region's time zone",
            parameters=[{"name": "region", "in": "query", "required": True,
                         "schema": {"type": "string"}},
                        {"name": "period", "in": "query", "required": False,
                         "schema": {"type": "string"}},
                        {"name": "lang", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["id", "en"]}}],
            responses={200: _OBJ}, errors=(422,))
