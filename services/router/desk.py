"""The agency desk: server-rendered pages (Jinja2) in Bahasa Indonesia and English
that work without JavaScript and on a phone.

Sessions are the identity package's tokens in an HttpOnly, SameSite=Lax cookie;
every form carries the session-bound CSRF token, and the login form a double-submit
token (there is no session yet to bind it to).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from awasi import i18n, lifecycle, timefmt
from awasi.identity import (
    SESSION_COOKIE,
    InvalidCredentials,
    LoginThrottled,
    User,
    agency_members,
    logout,
)
from awasi.identity.web import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    attempt_login,
    csrf_token,
    current_user,
    login_csrf_ok,
    new_login_csrf,
    require_user,
    session_token,
    set_login_csrf_cookie,
    set_session_cookie,
)
from awasi.signing import sign
from awasi.web import keys
from awasi.web.body import read_form, validate
from awasi.web.errors import ApiError, Forbidden, Unauthorized, ValidationFailed
from awasi.web.redirects import safe_next
from services.router import api, assignment, db, domain, duplicates, notes
from services.router.keys import CATALOG, CLOCK, HTTP, MESSAGES, TRIGRAM

HERE = Path(__file__).resolve().parent
LOGIN_PATH = "/login"
Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- locale -------------------------------------------------------------------------

@web.middleware
async def locale_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return await handler(request)  # type: ignore[no-any-return]
    locale, explicit = i18n.negotiate(request)
    i18n.set_locale(locale)  # this request's task only (a context variable)
    cookie = f"{i18n.COOKIE}={locale}; Max-Age={365 * 86400}; Path=/; SameSite=Lax"
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:
        # Redirects (to the login page, say) remember the choice too.
        if explicit and e.status < 400:
            e.headers.add("Set-Cookie", cookie)
        raise
    if explicit:
        response.headers.add("Set-Cookie", cookie)
    return response


# --- rendering ----------------------------------------------------------------------

def render(request: web.Request, template: str, context: dict[str, Any],
           status: int = 200) -> web.Response:
    app = request.app
    user: User | None = context.get("user")
    base = {
        "lang": i18n.current_locale(),
        "csrf": (csrf_token(app[keys.SETTINGS].secret_key, session_token(request) or "")
                 if user else ""),
        "path": request.path,
        "query_string": request.query_string,
        "catalog": app[CATALOG],
    }
    response = aiohttp_jinja2.render_template(template, request, base | context,
                                              status=status)
    # Pages show personal data (for named reports): never cache them. (CSP, framing
    # and the other security headers: awasi.web.headers, for every response.)
    response.headers["Cache-Control"] = "no-store"
    return response


def page(handler: Page) -> Page:
    """Pages answer HTML: not logged in -> the login page; other errors -> an error page
    with the same status as the API would answer (404 leaks nothing)."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Unauthorized:
            target = urllib.parse.quote(request.path_qs) if request.method == "GET" else "/"
            raise web.HTTPFound(f"/login?next={target}") from None
        except ApiError as e:
            user = await current_user(request)
            return render(request, "error.html", {"user": user, "error": e}, status=e.status)

    wrapped.__name__ = handler.__name__
    return wrapped


def see_other(location: str) -> web.Response:
    """A 303 redirect as a plain response (so cookies can be set on it)."""
    return web.Response(status=303, headers={"Location": location})


def local_time(value: datetime | str | None, tz_name: str) -> str:
    """An instant as the region's local time, with its zone's name (WIB, WITA, WIT), in
    the page's language: ``awasi.timefmt``, the one format of every page."""
    return timefmt.format_datetime(value, tz_name, i18n.current_locale(), empty="-")


def setup(app: web.Application) -> None:
    messages = i18n.Catalogs(HERE / "locale")
    app[MESSAGES] = messages
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=True)
    env.globals["_"] = lambda message, **params: messages.gettext(message, **params)
    env.globals["local_time"] = local_time
    r = app.router
    r.add_get(LOGIN_PATH, login_page)
    r.add_post(LOGIN_PATH, login_submit)
    r.add_post("/logout", logout_submit)
    r.add_get("/", home)
    r.add_get("/tickets/{id}", ticket_page)
    for action in ("acknowledge", "request-info", "respond", "resolve", "transfer", "assign",
                   "notes"):
        r.add_post(f"/tickets/{{id}}/{action}", ticket_action)
    r.add_post("/tickets/bulk", bulk_submit)
    r.add_get("/escalations", escalations_page)
    r.add_get("/triage", triage_page)
    r.add_get("/transferred", transferred_page)
    r.add_get("/notifications", notifications_page)
    r.add_post("/triage/{id}/route", triage_route)
    r.add_post("/triage/{id}/reject", triage_reject)
    r.add_post("/triage/{id}/move-region", triage_move)
    r.add_static("/assets", HERE / "static")  # the queue's live notice script


# --- login --------------------------------------------------------------------------

async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request, error=None, status=200)


def _login_form(request: web.Request, error: str | None, status: int) -> web.Response:
    token = new_login_csrf()
    response = render(request, "login.html", {
        "user": None, "error": error, "login_csrf": token,
        # Only same-site paths: an open redirect would let a phishing link pass us.
        "next": safe_next(request.query.get("next")),
    }, status=status)
    set_login_csrf_cookie(request, response, token, LOGIN_PATH)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    gettext = request.app[MESSAGES].gettext
    if not login_csrf_ok(request, form):
        return _login_form(request, gettext("Your form expired; please try again."), 403)
    try:
        _, token = await attempt_login(request, str(form.get("username", "")).strip(),
                                       str(form.get("password", "")))
    except LoginThrottled:
        return _login_form(request, gettext("Too many failed logins; try again in a minute."),
                           429)
    except InvalidCredentials:
        return _login_form(request, gettext("Wrong username or password."), 401)
    response = see_other(safe_next(form.get("next")))
    set_session_cookie(request, response, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


@page
async def logout_submit(request: web.Request) -> web.StreamResponse:
    await require_user(request)
    token = session_token(request)
    if token:
        await logout(request.app[keys.POOL], token)
    response = see_other("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# --- the queue ----------------------------------------------------------------------

def _flag(value: str | None) -> bool | None:
    return True if value in ("1", "true", "on") else None


@page
async def home(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    if user.role == "triage":
        raise web.HTTPFound("/triage")
    if user.role == "admin":
        raise web.HTTPFound("/admin/accounts")
    if user.role not in api.AGENCY_ROLES:
        raise Forbidden(request.app[MESSAGES].gettext(
            "The agency desk is for agency staff; panel members use the oversight console."))
    q = request.query
    query = validate(api.ListQuery, {
        "status": q.get("status") or None, "category": q.get("category") or None,
        "overdue": _flag(q.get("overdue")), "due_soon": _flag(q.get("due_soon")),
        "warned": _flag(q.get("warned")), "assignee": q.get("assignee") or None,
        "q": q.get("q", "").strip() or None, "after": q.get("after") or None,
        "sort": q.get("sort") or "-created", "limit": q.get("limit") or PAGE_SIZE,
    })
    now = request.app[CLOCK]()
    filters = query.filters(user, request.app[TRIGRAM])
    rows, total = await api.read_page(request.app[keys.POOL], now, filters,
                                      agency=user.agency)
    catalog = request.app[CATALOG]
    agency = catalog.agencies.get(user.agency or "")
    # The live notice long-polls the API for the same list, from this list's ETag.
    api_query = urllib.parse.urlencode({
        k: str(v).lower() if isinstance(v, bool) else v
        for k, v in query.model_dump(include={"status", "category", "overdue", "due_soon", "warned",
                                              "assignee", "q", "after", "sort", "limit"}).items()
        if v is not None})
    body = api.page_json(rows, now, filters, total)
    members = await agency_members(request.app[keys.POOL], user.agency or "") \
        if user.role == "head" else [user.username]
    return render(request, "queue.html", {
        "api_query": api_query, "etag": api.etag(api.list_body(rows, now, filters, total)),
        "user": user, "tickets": body["tickets"], "query": query, "page": body,
        "next_url": _next_url(request, body["next"]), "members": members,
        "agency": agency, "tz": catalog.regions[agency.region].timezone if agency else "UTC",
        "categories": catalog.categories_for(agency.region) if agency else [],
        "statuses": (*lifecycle.WITH_AGENCY, "resolved", "closed", "withdrawn"),
    })


PAGE_SIZE = 50


def _next_url(request: web.Request, token: str | None) -> str | None:
    """This page's address with ``after`` set to the next page's token."""
    if token is None:
        return None
    params = {k: v for k, v in request.query.items() if k != "after"}
    params["after"] = token
    return f"{request.path}?{urllib.parse.urlencode(params)}"


def _page_filters(request: web.Request, f: db.Filters) -> db.Filters:
    """``f`` from the page's ``after`` token (422 for one of another list)."""
    return replace(f, after=db.parse_after(f.sort, request.query.get("after") or None))


@page
async def escalations_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ("head",))
    now = request.app[CLOCK]()
    f = _page_filters(request, db.Filters(escalated=True, sort="deadline", limit=PAGE_SIZE))
    rows, total = await api.read_page(request.app[keys.POOL], now, f, agency=user.agency)
    body = api.page_json(rows, now, f, total)
    catalog = request.app[CATALOG]
    agency = catalog.agencies.get(user.agency or "")
    return render(request, "escalations.html", {
        "user": user, "tickets": body["tickets"], "agency": agency, "page": body,
        "next_url": _next_url(request, body["next"]),
        "tz": catalog.regions[agency.region].timezone if agency else "UTC",
    })


# --- one ticket ---------------------------------------------------------------------

async def fetch_reporter(app: web.Application, complaint_id: str) -> dict[str, Any] | None:
    """The named reporter's contact from intake (which alone keeps it), or None when
    intake has none or cannot be reached. Call only after checking that the caller's
    agency owns the ticket and the report is ``named``."""
    settings = app[keys.SETTINGS]
    url = (f"{settings.intake_url}/internal/v1/complaints/"
           f"{urllib.parse.quote(complaint_id, safe='')}/reporter")
    try:
        async with app[HTTP].get(url, params={
            "token": sign(settings.secret_key, "reporter", complaint_id)
        }) as r:
            if r.status != 200:
                return None
            data = await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: data.get(k) for k in ("name", "phone", "email")}


def photo_links(app: web.Application, photo_ids: list[str]) -> list[str]:
    settings = app[keys.SETTINGS]
    return [f"{settings.intake_url}/photos/{urllib.parse.quote(p, safe='')}?token="
            f"{sign(settings.secret_key, 'photo', p)}" for p in photo_ids]


@page
async def ticket_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, api.AGENCY_ROLES)
    pool = request.app[keys.POOL]
    # The agency check comes first: nothing below runs for another agency's ticket.
    row = await db.get_for_agency(pool, request.match_info["id"], user.agency)
    return await render_ticket(request, user, row)


async def render_ticket(request: web.Request, user: User, row: asyncpg.Record,
                         error: ApiError | None = None) -> web.Response:
    app = request.app
    now = app[CLOCK]()
    catalog = app[CATALOG]
    reporter = None
    if row["privacy"] == "named":
        reporter = await fetch_reporter(app, row["complaint_id"])
    timeline = await db.timeline(app[keys.POOL], row["id"])
    return render(request, "ticket.html", {
        "user": user, "t": api.ticket_json(row, now), "reporter": reporter,
        "timeline": api.timeline_json(timeline),
        "photos": photo_links(app, list(row["photo_ids"])),
        "tz": catalog.regions[row["region"]].timezone,
        "allowed": {a for a, s in domain.ALLOWED.items() if row["status"] in s},
        "transfer_to": [a for a in catalog.agencies_in(row["region"])
                        if a.code != row["agency"]],
        "category": catalog.categories.get(row["category"]),
        "notes": [notes.note_json(n) for n in await db.notes(app[keys.POOL], row["id"])],
        # The files sent to the citizen (services/router/attachments.py).
        "attachments": await db.attachments(app[keys.POOL], row["id"]),
        "attachment_max_mb": round(app[keys.SETTINGS].attachment_max_bytes / 1048576, 1),
        "assign_to": (await agency_members(app[keys.POOL], row["agency"])
                      if user.role == "head" else [user.username]),
        "assignable": row["status"] in assignment.ASSIGNABLE,
        "error": error,
        **await duplicates.page_context(app, user, row),
    }, status=error.status if error else 200)


@page
async def ticket_action(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, api.AGENCY_ROLES)  # checks the CSRF token too
    action = request.path.rsplit("/", 1)[-1]
    form = await read_form(request)
    fields = {k: str(v) for k, v in form.items() if k != CSRF_FIELD}
    catalog = request.app[CATALOG]
    ticket_id = request.match_info["id"]
    now = request.app[CLOCK]()
    pool = request.app[keys.POOL]
    try:
        async with pool.acquire() as conn, conn.transaction():
            if action == "acknowledge":
                await domain.acknowledge(conn, catalog, user, ticket_id, now)
            elif action == "request-info":
                b = validate(api.RequestInfoBody, {"question": fields.get("question", "")})
                await domain.request_info(conn, catalog, user, ticket_id, b.question, now)
            elif action == "respond":
                m = validate(api.RespondBody, {"message": fields.get("message", "")})
                await domain.respond(conn, catalog, user, ticket_id, m.message, now)
            elif action == "resolve":
                n = validate(api.ResolveBody, {"note": fields.get("note", "")})
                await domain.resolve(conn, catalog, user, ticket_id, n.note, now)
            elif action == "assign":
                a = validate(api.AssignBody, {"username": fields.get("username") or None})
                await assignment.assign(conn, catalog, user, ticket_id, a.username, now)
            elif action == "notes":
                nb = validate(notes.NoteBody, {"body": fields.get("body", "")})
                await notes.add(conn, user, ticket_id, nb.body, now)
            else:
                t = validate(api.TransferBody, {"agency": fields.get("agency", ""),
                                                "reason": fields.get("reason", "")})
                await domain.transfer(conn, catalog, user, ticket_id, t.agency, t.reason, now)
    except ApiError as e:
        if e.status == 404:
            raise
        # Show the ticket again with the problem (it is the caller's own ticket).
        row = await db.get_for_agency(pool, ticket_id, user.agency)
        return await render_ticket(request, user, row, error=e)
    if action == "transfer":
        raise web.HTTPSeeOther("/")  # no longer ours to see
    raise web.HTTPSeeOther(f"/tickets/{ticket_id}")


@page
async def bulk_submit(request: web.Request) -> web.StreamResponse:
    """The queue's checkboxes: acknowledge or assign the ticked tickets, each its own
    action; the answer lists what worked and what did not, ticket by ticket."""
    user = await require_user(request, api.AGENCY_ROLES)  # checks the CSRF token too
    form = await read_form(request)
    ids = [str(v) for v in form.getall("ids", [])]
    if not ids:
        raise ValidationFailed(request.app[MESSAGES].gettext("Tick at least one ticket."),
                               details={"fields": [{"field": "ids",
                                                    "message": "empty", "type": "missing"}]})
    action = str(form.get("action", ""))
    raw: dict[str, Any] = {"action": action, "ids": ids}
    if action == "assign":
        raw["username"] = str(form.get("username", "")) or None
    body = validate(api.BulkBody, raw)
    now = request.app[CLOCK]()
    results = await api.bulk(request.app[keys.POOL], request.app[CATALOG], user, body, now)
    catalog = request.app[CATALOG]
    agency = catalog.agencies.get(user.agency or "")
    return render(request, "bulk.html", {
        "user": user, "results": results, "action": body.action,
        "tz": catalog.regions[agency.region].timezone if agency else "UTC",
    })


@page
async def notifications_page(request: web.Request) -> web.StreamResponse:
    """Escalations that reach people: a head's breaches, the inspectorate's level 2."""
    user = await require_user(request, api.AGENCY_ROLES)
    catalog = request.app[CATALOG]
    rows = await db.notifications(request.app[keys.POOL], user.agency,
                                  api.audiences(user, catalog), user.username)
    agency = catalog.agencies.get(user.agency or "")
    return render(request, "notifications.html", {
        "user": user, "items": [api.notification_json(r) for r in rows],
        "tz": catalog.regions[agency.region].timezone if agency else "UTC",
    })


@page
async def transferred_page(request: web.Request) -> web.StreamResponse:
    """Read-only: what the agency sent away, and where each ticket stands now."""
    user = await require_user(request, api.AGENCY_ROLES)
    rows = await db.transferred_by(request.app[keys.POOL], user.agency)
    catalog = request.app[CATALOG]
    agency = catalog.agencies.get(user.agency or "")
    return render(request, "transferred.html", {
        "user": user, "tickets": [api.transferred_json(r) for r in rows],
        "tz": catalog.regions[agency.region].timezone if agency else "UTC",
    })


# --- triage -------------------------------------------------------------------------

@page
async def triage_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ("triage",))
    now = request.app[CLOCK]()
    f = _page_filters(request, db.Filters(sort="deadline", limit=PAGE_SIZE))
    rows, total = await api.read_page(request.app[keys.POOL], now, f, triage=True,
                                      triage_region=user.region)
    body = api.page_json(rows, now, f, total)
    catalog = request.app[CATALOG]
    return render(request, "triage.html", {
        "user": user, "tickets": body["tickets"], "page": body,
        "next_url": _next_url(request, body["next"]),
        "agencies_by_region": {code: catalog.agencies_in(code) for code in catalog.regions},
        "regions": catalog.regions,
    })


@page
async def triage_route(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ("triage",))
    form = await read_form(request)
    body = validate(api.RouteBody, {"agency": str(form.get("agency", ""))})
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        await domain.route_by_hand(conn, request.app[CATALOG], user,
                                   request.match_info["id"], body.agency,
                                   request.app[CLOCK]())
    raise web.HTTPSeeOther("/triage")


@page
async def triage_move(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ("triage",))
    form = await read_form(request)
    body = validate(api.MoveRegionBody, {"region": str(form.get("region", "")),
                                         "reason": str(form.get("reason", ""))})
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        await domain.move_region(conn, request.app[CATALOG], user, request.match_info["id"],
                                 body.region, body.reason, request.app[CLOCK]())
    raise web.HTTPSeeOther("/triage")


@page
async def triage_reject(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ("triage",))
    form = await read_form(request)
    body = validate(api.RejectBody, {
        "reason_code": str(form.get("reason_code", "")), "reason": str(form.get("reason", "")),
        "duplicate_of": str(form.get("duplicate_of", "")).strip() or None})
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        await domain.reject_by_hand(conn, request.app[CATALOG], user,
                                    request.match_info["id"], body.reason_code, body.reason,
                                    body.duplicate_of, request.app[CLOCK]())
    raise web.HTTPSeeOther("/triage")
