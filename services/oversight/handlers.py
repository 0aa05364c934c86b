"""The oversight JSON API. Panel routes need the ``panel`` role (401 without a
token, 403 for any other role); the audit check and the statistics are public."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from awasi.identity import User, require_user
from awasi.web import keys as web_keys
from awasi.web.body import parse_json
from awasi.web.responses import json_response
from services.oversight import chain, keys, panel, stats

PANEL_ROLES = ("panel",)


async def panel_member(request: web.Request) -> User:
    """The calling panel member; the one auth check every panel route makes."""
    return await require_user(request, roles=PANEL_ROLES)


def _now(request: web.Request) -> Any:
    return request.app[keys.CLOCK].now()


async def get_review_queue(request: web.Request) -> web.Response:
    await panel_member(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        items = await panel.review_queue(conn, _now(request))
    return json_response({"items": items, "count": len(items)})


async def post_claim(request: web.Request) -> web.Response:
    user = await panel_member(request)
    out = await panel.claim(request.app[web_keys.POOL], request.match_info["tracking_code"],
                            user.username, _now(request))
    return json_response(out)


async def get_timeline(request: web.Request) -> web.Response:
    await panel_member(request)
    async with request.app[web_keys.POOL].acquire() as conn:
        out = await panel.timeline(conn, request.match_info["tracking_code"], _now(request))
    return json_response(out)


async def post_finding(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, panel.FindingIn)
    out = await panel.record_finding(request.app[web_keys.POOL],
                                     request.match_info["tracking_code"], body,
                                     user.username, _now(request))
    return json_response(out, status=201)


async def post_reopen(request: web.Request) -> web.Response:
    user = await panel_member(request)
    body = await parse_json(request, panel.ReopenIn)
    out = await panel.reopen(request.app[web_keys.POOL], request.match_info["tracking_code"],
                             body, user.username, _now(request))
    return json_response(out, status=202)


async def get_audit_verify(request: web.Request) -> web.Response:
    async with request.app[web_keys.POOL].acquire() as conn:
        verdict = await chain.verify(conn)
    return json_response(verdict.to_json())


async def current_stats(request: web.Request) -> stats.Stats:
    async with request.app[web_keys.POOL].acquire() as conn:
        return await stats.compute(conn, request.app[keys.CATALOG], _now(request))


async def get_stats(request: web.Request) -> web.Response:
    s = await current_stats(request)
    return json_response(s.to_json())


async def get_stats_csv(request: web.Request) -> web.Response:
    s = await current_stats(request)
    return web.Response(
        text=stats.to_csv(s), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="awasi-agencies.csv"'},
    )


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    r = app.router
    api.add(r, "GET", "/api/v1/review-queue", get_review_queue, tags=["panel"],
            summary="The panel's review queue: why each case is there and since when",
            responses={200: _OBJ}, secured=True, errors=())
    api.add(r, "POST", "/api/v1/review-queue/{tracking_code}/claim", post_claim,
            tags=["panel"], summary="Claim a queued case", responses={200: _OBJ},
            secured=True, errors=(404, 409))
    api.add(r, "GET", "/api/v1/cases/{tracking_code}/timeline", get_timeline,
            tags=["panel"], summary="A case's whole timeline", responses={200: _OBJ},
            secured=True, errors=(404,))
    api.add(r, "POST", "/api/v1/cases/{tracking_code}/findings", post_finding,
            tags=["panel"], summary="Record a finding (emits finding.recorded)",
            body=panel.FindingIn, responses={201: _OBJ}, secured=True,
            errors=(400, 404, 409, 422))
    api.add(r, "POST", "/api/v1/cases/{tracking_code}/reopen", post_reopen,
            tags=["panel"], summary="Reopen a case (emits case.reopened for the router)",
            body=panel.ReopenIn, responses={202: _OBJ}, secured=True,
            errors=(400, 404, 409, 422))
    api.add(r, "GET", "/api/v1/audit/verify", get_audit_verify, tags=["audit"],
            summary="Walk the timeline's hash chain; name the first entry that does not match",
            responses={200: _OBJ}, errors=())
    api.add(r, "GET", "/api/v1/stats/agencies", get_stats, tags=["stats"],
            summary="Public statistics per agency and per region", responses={200: _OBJ},
            errors=())
    api.add(r, "GET", "/api/v1/stats/agencies.csv", get_stats_csv, tags=["stats"],
            summary="The same statistics as CSV", responses={200: None}, errors=())
