"""The panel console's evaluation page ``/panel/evaluation``: publish an ended
period's report, address a recommendation to an agency, and see what was published
(with each PDF's SHA-256, as on the chain). Plain forms, CSRF-checked, no JavaScript.
The same functions serve the JSON API (``reports.publish_report``,
``recommendations.issue``)."""

from __future__ import annotations

from datetime import date

from aiohttp import web
from pydantic import ValidationError

from awasi.periods import BadPeriod, Period, current_quarter
from awasi.web import keys as web_keys
from awasi.web.body import read_form
from awasi.web.errors import ApiError
from services.oversight import keys, recommendations, reports
from services.oversight.pages import _csrf, _panel_user, render

# English msgids (locale/*.po) for the refusals a panel member can meet.
PUBLISH_REFUSALS = {
    "period_open": "This period has not ended yet in the region; publish it once it has.",
    "already_published": "This report is published already; it never changes.",
}


async def evaluation_page(request: web.Request, *, error: str | None = None,
                          values: dict[str, str] | None = None,
                          status: int = 200) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    catalog = request.app[keys.CATALOG]
    first = next(iter(catalog.regions.values()))
    previous = current_quarter(request.app[keys.CLOCK].now(), first.timezone).previous()
    async with request.app[web_keys.POOL].acquire() as conn:
        published = await reports.published_list(conn)
    return render("evaluation.html", request, {
        "user": user, "csrf": _csrf(request), "error": error,
        "notice": request.query.get("done"), "values": values or {},
        "regions": list(catalog.regions.values()),
        "agencies": list(catalog.agencies.values()), "published": published,
        "default_period": previous.code}, status=status)


async def publish_action(request: web.Request) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    form = await read_form(request)
    values = {k: str(form.get(k, "")).strip() for k in ("region", "period", "agency")}
    catalog = request.app[keys.CATALOG]
    gettext = request.app[keys.MESSAGES].gettext
    agency = values["agency"] or None
    if values["region"] not in catalog.regions or (
            agency is not None and catalog.agencies.get(agency) is None):
        message = gettext("Choose a region and, for an agency's report, one of its agencies.")
        return await evaluation_page(request, error=message, values=values, status=422)
    try:
        period = Period.parse(values["period"])
        await reports.publish_report(request.app, values["region"], period, agency,
                                     user.username)
    except BadPeriod:
        return await evaluation_page(request, error=gettext(
            "Write the period as 2026, 2026-H2 or 2026-Q4."), values=values, status=422)
    except ApiError as e:
        message = gettext(PUBLISH_REFUSALS[e.code]) if e.code in PUBLISH_REFUSALS else e.message
        return await evaluation_page(request, error=message, values=values,
                                     status=e.status)
    raise web.HTTPSeeOther("/panel/evaluation?done=published#published")


async def recommend_action(request: web.Request) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    form = await read_form(request)
    names = ("agency", "what", "why", "due_date", "source_kind", "source_ref")
    values = {k: str(form.get(k, "")).strip() for k in names}
    try:
        body = recommendations.RecommendationIn(
            agency=values["agency"], what=values["what"], why=values["why"],
            due_date=date.fromisoformat(values["due_date"]) if values["due_date"] else None,
            source_kind=values["source_kind"] or "panel",  # type: ignore[arg-type]
            source_ref=values["source_ref"] or None)
        await recommendations.issue(request.app[web_keys.POOL], request.app[keys.CATALOG],
                                    body, user.username, request.app[keys.CLOCK].now())
    except (ValidationError, ValueError) as e:
        message = ("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                             for err in e.errors())
                   if isinstance(e, ValidationError) else str(e))
        return await evaluation_page(request, error=message, values=values, status=422)
    except ApiError as e:
        return await evaluation_page(request, error=e.message, values=values,
                                     status=e.status)
    raise web.HTTPSeeOther("/panel/evaluation?done=recommended")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/panel/evaluation", evaluation_page)
    r.add_post("/panel/evaluation/publish", publish_action)
    r.add_post("/panel/evaluation/recommendations", recommend_action)

