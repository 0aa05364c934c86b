"""Participation over HTTP: support a public report (JSON API and the public page's
form) and the similar-reports lookup (``GET /api/v1/reports/similar``). The rules
are in ``participation.py``; this module only reads requests and renders answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel

from awasi.web import keys
from awasi.web.body import read_form
from awasi.web.errors import RateLimited
from awasi.web.responses import json_response
from services.intake import device, pages, participation, reports, visibility
from services.intake import keys as ikeys
from services.intake.errors import UnknownComplaint, field_error

SIMILAR_TEXT_MAX = 4000


class SupportOut(BaseModel):
    tracking_code: str
    support_count: int
    counted: bool


class SimilarOut(BaseModel):
    reports: list[reports.PublicReportOut]


async def trigram_ctx(app: web.Application) -> AsyncIterator[None]:
    """Decide once, after the migrations ran, which similarity the database offers."""
    app[ikeys.TRIGRAM] = await participation.has_trigram(app[keys.POOL])
    yield


async def _support(request: web.Request, channel: participation.SupportChannel
                   ) -> tuple[participation.SupportResult, str, bool]:
    dev, new = device.ensure_device(request)
    key = participation.supporter_key(request.app[keys.SETTINGS].secret_key, "device", dev)
    request.app[ikeys.SUPPORT_LIMITER].check(key, request.remote)
    result = await participation.support(request.app[keys.POOL],
                                         request.match_info["tracking_code"], key, channel)
    return result, dev, new


async def support_api(request: web.Request) -> web.Response:
    """``POST /api/v1/complaints/{tracking_code}/support``: count one support of a
    public, open report from this device (the signed ``awasi_device`` cookie, set
    on the answer when missing). 200 with the count and whether this call counted;
    404 for an unknown, private, withdrawn or closed report; 429 over the limit."""
    result, dev, new = await _support(request, "api")
    response = json_response({"tracking_code": result.tracking_code,
                              "support_count": result.support_count,
                              "counted": result.counted})
    if new:
        device.remember(request, response, dev)
    return response


async def support_form(request: web.Request) -> web.StreamResponse:
    """``POST /reports/{tracking_code}/support`` from the public page (CSRF-checked,
    no JavaScript): back to the page (303), or the page with the message."""
    form = await read_form(request)
    pages.check_csrf(request, form)
    try:
        result, dev, new = await _support(request, "web")
    except UnknownComplaint:
        return await reports.report_page(request, status=404)
    except RateLimited as e:
        page = pages.Page(request)
        response = await reports.report_page(request, errors={"form": page.gettext(
            "Too many supports from your device. Please try again in %(s)s seconds.",
            s=e.details["retry_after_s"])}, status=429)
        response.headers.update(e.headers)
        return response
    response = pages.see_other(f"/reports/{result.tracking_code}")
    if new:
        device.remember(request, response, dev)
    pages.Page(request).finish(response)
    return response


async def similar_api(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/similar?region=&category=&text=&near=``: up to five open
    public reports of the region and category that read like ``text`` (closer first
    with ``near``). 422 naming the parameter for an unknown region or category, a
    missing or oversized text, a bad ``near``."""
    catalog = request.app[ikeys.CATALOG]
    q = request.query
    for name in q:
        if name not in ("region", "category", "text", "near", "lang"):
            raise field_error(name, "unknown parameter", "unknown_parameter")
    region, category = q.get("region", "").strip(), q.get("category", "").strip()
    participation.check_similar_input(catalog, region, category)
    text = q.get("text", "").strip()
    if not text or len(text) > SIMILAR_TEXT_MAX:
        raise field_error("text", f"between 1 and {SIMILAR_TEXT_MAX} characters",
                          "string_length")
    near = reports.parse_near(q["near"]) if q.get("near") else None
    rows = await participation.similar(request.app[keys.POOL], request.app[ikeys.TRIGRAM],
                                       region, category, text,
                                       *(near if near else (None, None)))
    return json_response({"reports": [visibility.public_report(catalog, r) for r in rows]})


def setup(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    r = app.router
    api.add(r, "POST", "/api/v1/complaints/{tracking_code}/support", support_api,
            summary="Support a public report ('saya juga mengalami'): once per device "
                    "(signed awasi_device cookie), rate limited; no body",
            responses={200: SupportOut}, tags=["participation"], errors=(404, 429))
    api.add(r, "GET", "/api/v1/reports/similar", similar_api,
            summary="Up to five open public reports of a region and category that read "
                    "like the text (to support one instead of filing again)",
            parameters=[
                {"name": "region", "in": "query", "required": True,
                 "schema": {"type": "string"}},
                {"name": "category", "in": "query", "required": True,
                 "schema": {"type": "string"}},
                {"name": "text", "in": "query", "required": True,
                 "schema": {"type": "string", "minLength": 1,
                            "maxLength": SIMILAR_TEXT_MAX}},
                {"name": "near", "in": "query", "required": False,
                 "schema": {"type": "string"}}],
            responses={200: SimilarOut}, tags=["participation"], errors=(422,))
    r.add_post("/reports/{tracking_code}/support", support_form)
