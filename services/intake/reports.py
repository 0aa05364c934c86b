"""The public list of reports: ``GET /api/v1/reports`` (JSON) and ``GET /reports``
(HTML, no JavaScript needed), public reports only, newest first.

Filters ``region``, ``category``, ``status`` (each one value from the catalog or the
list of statuses; anything else is a 422 naming the parameter). Pages are a keyset
on ``(submitted_at, tracking_code)``: the ``page`` token is the last report of the
previous page (its public code and time, nothing else), so every page is one range
scan of a partial index (``0160_visibility.sql``) and costs the same on the first
page as on the thousandth. What each report shows
is ``visibility.public_report``'s allow-list.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
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
from services.intake import keys as ikeys
from services.intake import pages, visibility
from services.intake.api import AgencyRef, CategoryRef, DeadlinesOut, NamedRef
from services.intake.errors import field_error

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
STATUSES = lifecycle.STATUSES
FILTERS = ("region", "category", "status")

# Only the columns the public view reads (an allow-list at the SQL too).
COLUMNS = ("tracking_code, region, category, title, description, lat, lon, address,"
           " agency, status, triage_by, acknowledge_by, resolve_by, dispute_until,"
           " submitted_at, updated_at, visibility")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """A validated request for one page of public reports."""

    region: str | None = None
    category: str | None = None
    status: str | None = None
    after: tuple[datetime, str] | None = None
    limit: int = PAGE_SIZE

    def filters(self) -> dict[str, str]:
        return {k: v for k in FILTERS if (v := getattr(self, k))}


def encode_page(submitted_at: datetime, tracking_code: str) -> str:
    """The token for the page after the report ``(submitted_at, tracking_code)``."""
    raw = json.dumps([submitted_at.isoformat(), tracking_code]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page(token: str) -> tuple[datetime, str]:
    """Inverse of ``encode_page``; raises ``ValidationFailed`` naming ``page``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, code = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as e:
        raise field_error("page", "not a page token from this list", "bad_page_token") from e
    if when.tzinfo is None or not isinstance(code, str) or not 0 < len(code) <= 40:
        raise field_error("page", "not a page token from this list", "bad_page_token")
    return when, code


def parse_query(catalog: Catalog, query: Any) -> ReportQuery:
    """Validate the query string (``region``, ``category``, ``status``, ``page``,
    ``limit``; blanks mean no filter). Raises ``ValidationFailed`` naming the first bad
    parameter (an unknown code or status, a bad page token, a limit out of range)."""
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
    return ReportQuery(region=region, category=category, status=status,
                       after=decode_page(page) if page else None, limit=limit)


def page_sql(q: ReportQuery) -> tuple[str, list[Any]]:
    """The one statement that reads a page (``limit + 1`` rows, to know whether
    there is a next page). ``visibility = 'public'`` is the partial indexes'
    predicate; the row comparison continues the walk where the last page stopped."""
    clauses, args = ["visibility = 'public'"], []

    def arg(v: Any) -> str:
        args.append(v)
        return f"${len(args)}"

    for name, value in q.filters().items():
        clauses.append(f"{name} = {arg(value)}")
    if q.after is not None:
        clauses.append(
            f"(submitted_at, tracking_code) < ({arg(q.after[0])}, {arg(q.after[1])})")
    return (f"SELECT {COLUMNS} FROM intake.complaints WHERE {' AND '.join(clauses)}"
            f" ORDER BY submitted_at DESC, tracking_code DESC LIMIT {arg(q.limit + 1)}", args)


async def fetch_page(pool: asyncpg.Pool, q: ReportQuery) -> tuple[list[asyncpg.Record],
                                                                  str | None]:
    """One page of public reports (newest first) and the token of the next page (None
    on the last)."""
    sql, args = page_sql(q)
    rows = await pool.fetch(sql, *args)
    if len(rows) > q.limit:
        last = rows[q.limit - 1]
        return list(rows[:q.limit]), encode_page(last["submitted_at"], last["tracking_code"])
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


# --- HTML ---------------------------------------------------------------------------------

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
    reports = []
    for row in rows:
        r = visibility.public_report(catalog, row)
        tz = catalog.regions[row["region"]].timezone if row["region"] in catalog.regions \
            else "Asia/Jakarta"
        reports.append({
            **r, "status_label": page.gettext(pages.STATUS_LABELS.get(r["status"], r["status"])),
            "category_name": r["category"]["name_en" if page.locale == "en" else "name_id"],
            "submitted_local": pages.fmt_dt(r["submitted_at"], tz, page.locale),
            "deadlines_local": [
                (page.gettext(pages.DEADLINE_LABELS[kind]),
                 pages.fmt_dt(r["deadlines"][key], tz, page.locale))
                for kind, key in (("acknowledge", "acknowledge_by"), ("resolve", "resolve_by"))
                if r["deadlines"][key]],
        })
    carried = {**q.filters(), **({"limit": str(q.limit)} if q.limit != PAGE_SIZE else {})}
    next_url = f"/reports?{urlencode({**carried, 'page': next_page})}" if next_page else None
    categories = (catalog.categories_for(q.region) if q.region
                  else list(catalog.categories.values()))
    return page.render("reports.html", {
        "reports": reports, "next_url": next_url, "q": q, "errors": errors,
        "regions": list(catalog.regions.values()), "categories": categories,
        "statuses": [(s, page.gettext(pages.STATUS_LABELS.get(s, s))) for s in STATUSES],
    }, status=422 if errors else 200)


def setup(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    params = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in ("region", "category", "page")]
    params += [{"name": "status", "in": "query", "required": False,
                "schema": {"type": "string", "enum": list(STATUSES)}},
               {"name": "limit", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}}]
    api.add(app.router, "GET", "/api/v1/reports", list_reports,
            summary="Public reports only, newest first; keyset pages (next_page token)",
            parameters=params, responses={200: ReportsOut}, tags=["reports"], errors=(422,))
    app.router.add_get("/reports", reports_page)
