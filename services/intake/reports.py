"""The public list of reports: ``GET /api/v1/reports`` (JSON) and ``GET /reports``
(HTML, no JavaScript needed), public reports only, newest first or most supported
first (``sort=new|support``).

Filters ``region``, ``category``, ``status`` (each one value from the catalog or the
list of statuses; anything else is a 422 naming the parameter) and ``near=lat,lon``
with ``radius_km`` (default 2, capped at ``MAX_RADIUS_KM``). Pages are a keyset on
``(submitted_at, tracking_code)`` (or ``(support_count, submitted_at,
tracking_code)``): the ``page`` token is the last report of the previous page (its
public code, time and count, nothing else), so every page is one range scan of a
partial index (``0160_visibility.sql``, ``0180_participation.sql``) and costs the
same on the first page as on the thousandth. What each report shows is
``visibility.public_report``'s allow-list.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web
from pydantic import BaseModel

from awasi import lifecycle
from awasi.catalog import Catalog
from awasi.web import keys
from awasi.web.errors import ValidationFailed
from awasi.web.responses import json_response
from services.intake import db, device, domain, pages, participation, photos, visibility
from services.intake import keys as ikeys
from services.intake.api import AgencyRef, CategoryRef, DeadlinesOut, NamedRef, OverdueOut
from services.intake.errors import field_error

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
STATUSES = lifecycle.STATUSES
FILTERS = ("region", "category", "status")
SORTS = ("new", "support")
# Every parameter the list understands; any other is a 422 naming it (a typo such as
# ``categroy`` must not silently list everything).
PARAMETERS = (*FILTERS, "sort", "near", "radius_km", "page", "limit", "lang")
DEFAULT_RADIUS_KM = 2.0
MAX_RADIUS_KM = 25.0
KM_PER_DEGREE = 111.2

# Only the columns the public view reads (an allow-list at the SQL too).
COLUMNS = visibility.PUBLIC_COLUMNS

# The keyset of a page: (submitted_at, code) for "new", (count, submitted_at, code)
# for "support".
After = tuple[datetime, str] | tuple[int, datetime, str]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A validated request for one page of public reports."""

    region: str | None = None
    category: str | None = None
    status: str | None = None
    after: Any = None
    limit: int = PAGE_SIZE
    sort: str = "new"
    near: tuple[float, float] | None = None
    radius_km: float = DEFAULT_RADIUS_KM

    def filters(self) -> dict[str, str]:
        return {k: v for k in FILTERS if (v := getattr(self, k))}

    def carried(self) -> dict[str, str]:
        """The query parameters a next-page link keeps (everything but the token)."""
        out = self.filters()
        if self.sort != "new":
            out["sort"] = self.sort
        if self.near is not None:
            out["near"] = f"{self.near[0]},{self.near[1]}"
            out["radius_km"] = f"{self.radius_km:g}"
        if self.limit != PAGE_SIZE:
            out["limit"] = str(self.limit)
        return out


def encode_page(row: Any, sort: str = "new") -> str:
    """The token for the page after ``row`` (a report of this page) in ``sort`` order."""
    key: list[Any] = [row["submitted_at"].isoformat(), row["tracking_code"]]
    if sort == "support":
        key.insert(0, row["support_count"])
    raw = json.dumps(key).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page(token: str, sort: str = "new") -> After:
    """Inverse of ``encode_page``; raises ``ValidationFailed`` naming ``page`` (also for
    a token of the other sort order)."""
    bad = field_error("page", "not a page token from this list", "bad_page_token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
        if not isinstance(key, list):
            raise bad
        count = None
        if sort == "support":
            count, at, code = key
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise bad
        else:
            at, code = key
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as e:
        raise bad from e
    if when.tzinfo is None or not isinstance(code, str) or not 0 < len(code) <= 40:
        raise bad
    return (count, when, code) if count is not None else (when, code)


def parse_near(raw: str) -> tuple[float, float]:
    """``"lat,lon"`` in degrees; raises ``ValidationFailed`` naming ``near``."""
    try:
        lat_s, lon_s = raw.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError as e:
        raise field_error("near", "give near=lat,lon in degrees", "bad_near") from e
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise field_error("near", "give near=lat,lon in degrees", "bad_near")
    return lat, lon


def parse_query(catalog: Catalog, query: Any) -> ReportQuery:
    """Validate the query string (``region``, ``category``, ``status``, ``sort``,
    ``near``, ``radius_km``, ``page``, ``limit``; blanks mean no filter). Raises
    ``ValidationFailed`` naming the first bad parameter (an unknown parameter, code,
    status or sort, a bad page token, a limit out of range). A radius over
    ``MAX_RADIUS_KM`` is capped, not refused."""
    for name in query:
        if name not in PARAMETERS:
            raise field_error(name, f"unknown parameter; known: {', '.join(PARAMETERS)}",
                              "unknown_parameter")
    region = (query.get("region") or "").strip() or None
    category = (query.get("category") or "").strip() or None
    status = (query.get("status") or "").strip() or None
    if region is not None and region not in catalog.regions:
        raise field_error("region", f"unknown region {region!r}", "unknown_code")
    if category is not None:
        offered = (catalog.categories_for(region) if region
                   else list(catalog.categories.values()))
        if category not in {c.code for c in offered}:
            raise field_error("category", f"unknown category {category!r}", "unknown_code")
    if status is not None and status not in STATUSES:
        raise field_error("status", f"unknown status {status!r}; one of "
                          f"{', '.join(STATUSES)}", "unknown_code")
    page = (query.get("page") or "").strip()
    limit_raw = (query.get("limit") or "").strip()
    limit = PAGE_SIZE
    if limit_raw:
        if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_PAGE_SIZE:
            raise field_error("limit", f"a number from 1 to {MAX_PAGE_SIZE}", "bad_limit")
        limit = int(limit_raw)
    sort = (query.get("sort") or "").strip() or "new"
    if sort not in SORTS:
        raise field_error("sort", f"one of {', '.join(SORTS)}", "unknown_code")
    near_raw = (query.get("near") or "").strip()
    near = parse_near(near_raw) if near_raw else None
    radius = DEFAULT_RADIUS_KM
    radius_raw = (query.get("radius_km") or "").strip()
    if radius_raw:
        try:
            radius = float(radius_raw)
        except ValueError as e:
            raise field_error("radius_km", "a distance in km", "bad_radius") from e
        if not math.isfinite(radius) or radius <= 0:
            raise field_error("radius_km", "a distance in km", "bad_radius")
        radius = min(radius, MAX_RADIUS_KM)
    return ReportQuery(region=region, category=category, status=status,
                       after=decode_page(page, sort) if page else None, limit=limit,
                       sort=sort, near=near, radius_km=radius)


def page_sql(q: ReportQuery, *, columns: str = COLUMNS, located: bool = False,
             limit: int | None = None) -> tuple[str, list[Any]]:
    """The one statement that reads a page (``limit + 1`` rows, to know whether
    there is a next page). ``visibility = 'public'`` is the partial indexes'
    predicate; the row comparison continues the walk where the last page stopped.
    ``located`` keeps only reports with a point (the map)."""
    clauses, args = ["visibility = 'public'"], []
    if located:
        clauses.append("lat IS NOT NULL AND lon IS NOT NULL")

    def arg(v: Any) -> str:
        args.append(v)
        return f"${len(args)}"

    for name, value in q.filters().items():
        clauses.append(f"{name} = {arg(value)}")
    if q.near is not None:
        # A box around the point (the radius in degrees of latitude, widened for
        # longitude), in the form the GiST index on public points answers
        # (``complaints_public_point``): for a small box the planner reads the points
        # in it and sorts that handful, instead of walking the newest reports until
        # enough of them happen to lie in the box.
        lat, lon = q.near
        dlat = q.radius_km / KM_PER_DEGREE
        dlon = dlat / max(0.01, math.cos(math.radians(lat)))
        clauses.append(f"point(lon, lat) <@ box(point({arg(lon - dlon)}, {arg(lat - dlat)}),"
                       f" point({arg(lon + dlon)}, {arg(lat + dlat)}))")
    keys_ = ("submitted_at", "tracking_code")
    if q.sort == "support":
        keys_ = ("support_count", *keys_)
    if q.after is not None:
        cols = ", ".join(keys_)
        vals = ", ".join(arg(v) for v in q.after)
        clauses.append(f"({cols}) < ({vals})")
    order = ", ".join(f"{k} DESC" for k in keys_)
    return (f"SELECT {columns} FROM intake.complaints WHERE {' AND '.join(clauses)}"
            f" ORDER BY {order} LIMIT {arg((limit or q.limit) + 1)}", args)


async def fetch_page(pool: asyncpg.Pool, q: ReportQuery) -> tuple[list[asyncpg.Record],
                                                                  str | None]:
    """One page of public reports (in ``q.sort`` order) and the token of the next
    page (None on the last)."""
    sql, args = page_sql(q)
    rows = await pool.fetch(sql, *args)
    if len(rows) > q.limit:
        return list(rows[:q.limit]), encode_page(rows[q.limit - 1], q.sort)
    return list(rows), None


# --- JSON ---------------------------------------------------------------------------------

class LocationOut(BaseModel):
    lat: float | None
    lon: float | None
    address: str | None


class PublicReportOut(BaseModel):
    """``visibility.PUBLIC_REPORT_FIELDS``."""

    tracking_code: str
    region: NamedRef
    category: CategoryRef
    title: str | None
    description: str
    location: LocationOut | None
    agency: AgencyRef | None
    status: str
    deadlines: DeadlinesOut
    overdue: OverdueOut
    support_count: int
    submitted_at: str
    updated_at: str


class ReportsOut(BaseModel):
    reports: list[PublicReportOut]
    next_page: str | None = None


async def list_reports(request: web.Request) -> web.Response:
    """``GET /api/v1/reports?region=&category=&status=&page=&limit=``."""
    catalog = request.app[ikeys.CATALOG]
    q = parse_query(catalog, request.query)
    rows, next_page = await fetch_page(request.app[keys.POOL], q)
    return json_response({"reports": [visibility.public_report(catalog, r) for r in rows],
                          "next_page": next_page})


MAP_MAX_POINTS = 2000
MAP_PARAMETERS = ("region", "category", "status", "near", "radius_km", "lang")


class MapPointOut(BaseModel):
    tracking_code: str
    title: str
    lat: float
    lon: float
    status: str
    support_count: int


class MapOut(BaseModel):
    points: list[MapPointOut]
    truncated: bool


async def map_points(request: web.Request) -> web.Response:
    """``GET /api/v1/reports/map?region=&category=&status=&near=``: the points of
    the newest ``MAP_MAX_POINTS`` located public reports matching the filters (one
    indexed walk, like a page), for the map; ``truncated`` when there are more."""
    catalog = request.app[ikeys.CATALOG]
    for name in request.query:
        if name not in MAP_PARAMETERS:
            raise field_error(name, f"unknown parameter; known: {', '.join(MAP_PARAMETERS)}",
                              "unknown_parameter")
    q = parse_query(catalog, request.query)
    sql, args = page_sql(q, located=True, limit=MAP_MAX_POINTS,
                         columns="tracking_code, title, category, lat, lon, status,"
                                 " support_count, submitted_at")
    rows = await request.app[keys.POOL].fetch(sql, *args)
    lang = pages.pick_locale(request)
    points = [{"tracking_code": r["tracking_code"],
               "title": r["title"] or (catalog.categories[r["category"]].name(lang)
                                       if r["category"] in catalog.categories
                                       else r["category"]),
               "lat": r["lat"], "lon": r["lon"], "status": r["status"],
               "support_count": r["support_count"]} for r in rows[:MAP_MAX_POINTS]]
    return json_response({"points": points, "truncated": len(rows) > MAP_MAX_POINTS})


# --- HTML ---------------------------------------------------------------------------------

def _tz(catalog: Catalog, region: str) -> str:
    return catalog.regions[region].timezone if region in catalog.regions else "Asia/Jakarta"


def display(page: pages.Page, catalog: Catalog, row: asyncpg.Record,
            now: datetime, photo_links: list[str] | None = None) -> dict[str, Any]:
    """A public report (``visibility.public_report``) with its labels and dates in
    the region's own time, for the templates."""
    r = (visibility.public_report(catalog, row, now) if photo_links is None
         else visibility.public_page(catalog, row, photo_links, now))
    tz = _tz(catalog, row["region"])
    return {
        **r, "status_label": page.gettext(pages.STATUS_LABELS.get(r["status"], r["status"])),
        "category_name": r["category"]["name_en" if page.locale == "en" else "name_id"],
        "submitted_local": pages.fmt_dt(r["submitted_at"], tz, page.locale),
        "deadlines_local": [
            (page.gettext(pages.DEADLINE_LABELS[kind]),
             pages.fmt_dt(r["deadlines"][key], tz, page.locale), r["overdue"][kind])
            for kind, key in (("acknowledge", "acknowledge_by"), ("resolve", "resolve_by"))
            if r["deadlines"][key]],
    }


async def reports_page(request: web.Request) -> web.Response:
    """``GET /reports``: the same list as a page, dates in each region's own time."""
    page = pages.Page(request)
    catalog = request.app[ikeys.CATALOG]
    errors: dict[str, str] = {}
    try:
        q = parse_query(catalog, request.query)
    except ValidationFailed as e:
        errors = {f["field"]: page.gettext("This filter or page link is not valid.")
                  for f in e.details["fields"]}
        q = ReportQuery()
    rows, next_page = await fetch_page(request.app[keys.POOL], q)
    now = datetime.now(UTC)
    reports = [display(page, catalog, row, now) for row in rows]
    next_url = (f"/reports?{urlencode({**q.carried(), 'page': next_page})}"
                if next_page else None)
    categories = (catalog.categories_for(q.region) if q.region
                  else list(catalog.categories.values()))
    page.with_map = True
    settings = request.app[keys.SETTINGS]
    map_filters = {k: v for k, v in q.carried().items() if k in MAP_PARAMETERS}
    return page.render("reports.html", {
        "map_source": f"/api/v1/reports/map?{urlencode(map_filters)}",
        "bbox": catalog.regions[q.region].bbox if q.region else None,
        "tiles": settings.map_tile_url, "tile_attribution": settings.map_tile_attribution,
        "reports": reports, "next_url": next_url, "q": q, "errors": errors,
        "regions": list(catalog.regions.values()), "categories": categories,
        "statuses": [(s, page.gettext(pages.STATUS_LABELS.get(s, s))) for s in STATUSES],
    }, status=422 if errors else 200)


async def public_row(pool: asyncpg.Pool, code: str) -> asyncpg.Record | None:
    """The public report ``code`` (its id too, for the timeline), or None for an
    unknown or private one alike."""
    return await pool.fetchrow(
        f"SELECT id, {COLUMNS} FROM intake.complaints WHERE tracking_code = $1"
        " AND visibility = 'public'", domain.normalize_code(code))


async def report_page(request: web.Request, *, errors: dict[str, str] | None = None,
                      status: int = 200) -> web.Response:
    """``GET /reports/{tracking_code}``: one public report with its public timeline
    (steps and times in the region's own time, never what was said) and the support
    button. A private or unknown code is the same 404 page."""
    page = pages.Page(request)
    catalog = request.app[ikeys.CATALOG]
    pool = request.app[keys.POOL]
    code = request.match_info["tracking_code"]
    row = await public_row(pool, code)
    if row is None:
        return page.render("report_missing.html", {"code": code}, status=404)
    tz = _tz(catalog, row["region"])
    timeline = [{"label": page.gettext(pages.PUBLIC_TIMELINE_LABELS.get(e["kind"], e["kind"])),
                 "at": pages.fmt_dt(e["at"], tz, page.locale), "kind": e["kind"]}
                for e in visibility.public_timeline(await db.timeline(pool, row["id"]))]
    dev = device.device_id(request)
    supported = dev is not None and await participation.has_supported(
        pool, row["tracking_code"], participation.supporter_key(
            request.app[keys.SETTINGS].secret_key, "device", dev))
    secret_key = request.app[keys.SETTINGS].secret_key
    links = [photos.public_photo_link(secret_key, row["tracking_code"], pid)
             for pid in await photos.public_photo_ids(pool, row["id"])]
    return page.render("report.html", {
        "r": display(page, catalog, row, datetime.now(UTC), links), "timeline": timeline,
        "supported": supported, "can_support": participation.supportable(row),
        "errors": errors or {},
    }, status=status)


def setup(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    params = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in ("region", "category", "page")]
    params += [{"name": "status", "in": "query", "required": False,
                "schema": {"type": "string", "enum": list(STATUSES)}},
               {"name": "sort", "in": "query", "required": False,
                "schema": {"type": "string", "enum": list(SORTS)}},
               {"name": "near", "in": "query", "required": False,
                "description": "lat,lon in degrees",
                "schema": {"type": "string", "pattern": r"^-?[0-9.]+,-?[0-9.]+$"}},
               {"name": "radius_km", "in": "query", "required": False,
                "description": f"around near (default {DEFAULT_RADIUS_KM:g}; capped at "
                               f"{MAX_RADIUS_KM:g})",
                "schema": {"type": "number", "exclusiveMinimum": 0}},
               {"name": "limit", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}}]
    api.add(app.router, "GET", "/api/v1/reports", list_reports,
            summary="Public reports only, newest or most supported first; keyset pages "
                    "(next_page token)",
            parameters=params, responses={200: ReportsOut}, tags=["reports"], errors=(422,))
    api.add(app.router, "GET", "/api/v1/reports/map", map_points,
            summary=f"Points of the newest {MAP_MAX_POINTS} located public reports "
                    "matching the filters, for the map",
            parameters=[p for p in params if p["name"] in MAP_PARAMETERS],
            responses={200: MapOut}, tags=["reports"], errors=(422,))
    app.router.add_get("/reports", reports_page)
    app.router.add_get("/reports/{tracking_code}", report_page)
    app.router.add_get("/reports/{tracking_code}/photos/{photo_id}", photos.serve_public_photo)
