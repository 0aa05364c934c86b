"""Pages: the public dashboard at ``/`` (no login, no personal data, charts as
server-rendered inline SVG: no JavaScript, no CDN) and the panel console under
``/panel`` (same staff login as the desk, ``panel`` role, CSRF-protected forms).

Bahasa Indonesia first: the locale comes from ``?lang=``, then the ``awasi_lang``
cookie, then ``Accept-Language``, else Indonesian.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import ValidationError

from awasi import i18n, timefmt
from awasi.identity import InvalidCredentials, LoginThrottled, User, csrf_token, logout
from awasi.identity.store import account_audit
from awasi.identity.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    attempt_login,
    caller_token,
    change_own_password,
    login_csrf_ok,
    new_login_csrf,
    require_user,
    set_login_csrf_cookie,
    set_session_cookie,
)
from awasi.web import keys as web_keys
from awasi.web import page_cache
from awasi.web.body import read_form
from awasi.web.errors import ApiError, Forbidden, NotFound, Unauthorized
from awasi.web.redirects import safe_next
from services.oversight import (
    audit,
    conflicts,
    evaluation,
    findings,
    keys,
    notes,
    panel,
    stats,
)
from services.oversight.handlers import queue_filter

WEAK_PASSWORD = ("This password is too easy to guess. Use at least 10 characters:"
                 " a few uncommon words, for example.")
TEMPLATES = Path(__file__).resolve().parent / "templates"
PANEL = "/panel"
LOGIN_PATH = "/panel/login"

# Chart geometry (px).
CHART_WIDTH = 640
LABEL_WIDTH = 190
VALUE_WIDTH = 150
ROW_HEIGHT = 26
BAR_HEIGHT = 16


def render(template: str, request: web.Request, context: dict[str, Any],
           status: int = 200, data_key: bytes | None = None) -> web.Response:
    """``template`` with ``context``. With ``data_key`` (a ``page_cache.digest`` of
    everything the context holds that is not the same for every request) the page is
    rendered once per key and language (keys.PAGES)."""
    locale, remember = i18n.negotiate(request)
    i18n.set_locale(locale)
    # tz: the zone times are shown in (a case's region's; else WIB).
    context = {"locale": locale, "path": request.path, "tz": timefmt.DEFAULT_TZ, **context}
    if data_key is None:
        response = aiohttp_jinja2.render_template(template, request, context, status=status)
    else:
        key = page_cache.digest(template, locale, request.path_qs, data_key.hex())
        response = web.Response(status=status, content_type="text/html", charset="utf-8")
        response.text = request.app[keys.PAGES].get_or_render(
            key, lambda: aiohttp_jinja2.render_string(template, request, context))
    if remember:
        response.set_cookie(i18n.COOKIE, locale, max_age=365 * 86400, samesite="Lax",
                            path="/")
    return response


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "%":
        return f"{value * 100:.0f}%"
    if unit == "h":
        return f"{value:.1f} h"
    if unit == "n":
        return f"{value:.0f}"
    return f"{value:.2f}"


def with_chart_labels(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with ``chart_label``: the agency's short name, followed by its region's
    code wherever two agencies share a short name (every city has an "Inspektorat":
    five bars must not look alike)."""
    seen: dict[str, int] = {}
    for r in rows:
        seen[r["short_name"]] = seen.get(r["short_name"], 0) + 1
    return [{**r, "chart_label": (f"{r['short_name']} · {r['region']}"
                                  if seen[r["short_name"]] > 1 and r.get("region")
                                  else r["short_name"])} for r in rows]


def bar_chart(title: str, rows: list[dict[str, Any]], key: str, unit: str,
              label_key: str = "chart_label", scale_max: float | None = None) -> dict[str, Any]:
    """Geometry of one horizontal bar chart. A hidden rate gets no bar, only a note
    with its sample size."""
    values = []
    for r in rows:
        fig = r[key]
        if isinstance(fig, dict):
            values.append((r[label_key], fig["value"], fig["n"], fig["hidden"]))
        else:
            values.append((r[label_key], float(fig), None, False))
    top = scale_max or max([v for _, v, _, _ in values if v is not None] + [0]) or 1.0
    span = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = []
    for i, (label, value, n, hidden) in enumerate(values):
        y = i * ROW_HEIGHT
        bars.append({
            "label": label, "y": y, "text_y": y + BAR_HEIGHT - 3,
            "width": 0 if value is None else max(1.0, round(span * value / top, 1)),
            "value": value, "display": _fmt(value, unit), "n": n, "hidden": hidden,
        })
    return {"title": title, "bars": bars, "width": CHART_WIDTH,
            "height": max(ROW_HEIGHT, len(bars) * ROW_HEIGHT), "label_width": LABEL_WIDTH,
            "bar_height": BAR_HEIGHT, "value_x": CHART_WIDTH - VALUE_WIDTH + 6}


async def dashboard(request: web.Request) -> web.Response:
    _ = request.app[keys.MESSAGES].gettext
    locale, _remember = i18n.negotiate(request)
    i18n.set_locale(locale)
    pool = request.app[web_keys.POOL]
    async with pool.acquire() as conn:
        s = await stats.current(conn, request.app[keys.CATALOG], request.app[keys.CLOCK].now())
        findings = await stats.published_findings(conn)
        checkpoint = await audit.latest(conn)
        satisfaction = await evaluation.dashboard_section(request, conn, _)
    agencies = with_chart_labels(s.agencies)
    charts = [
        bar_chart(_("Share resolved within the deadline"), agencies,
                  "share_resolved_within_deadline", "%", scale_max=1.0),
        bar_chart(_("Median time to acknowledge (hours)"), agencies,
                  "median_hours_to_acknowledge", "h"),
        bar_chart(_("Median time to resolve (hours)"), agencies, "median_hours_to_resolve", "h"),
        bar_chart(_("Average rating (1-5)"), agencies, "average_rating", "r", scale_max=5.0),
        bar_chart(_("Deadline breaches"), agencies, "breaches", "n"),
        bar_chart(_("Complaints received"), agencies, "received", "n"),
    ]
    names = {a["agency"]: a["short_name"] for a in agencies}
    catalog = request.app[keys.CATALOG]
    for f in findings:
        ag = catalog.agencies.get(f["agency"] or "")
        f["agency_name"] = ag.name if ag else names.get(f["agency"], f["agency"])
    # Rendered once per data_key: what is read per request (the charts derive from the
    # snapshot); the signing key, the formats and the refresh interval are the process's.
    return render("dashboard.html", request, {
        "stats": s, "charts": charts, "findings": findings, "fmt": _fmt,
        "key": request.app[keys.SIGNING_KEY], "checkpoint": checkpoint,
        "satisfaction": satisfaction,
        # The dashboard spans regions in three zones: the figures' time in WIB, the
        # zone most of the demo's cities (and Jakarta's readers) live in.
        "as_of": timefmt.format_datetime(s.generated_at, timefmt.DEFAULT_TZ, locale),
        "refresh_s": f"{request.app[web_keys.SETTINGS].stats_refresh_s:g}",
    }, data_key=page_cache.digest(s.to_json(), findings, checkpoint, satisfaction))


# --- panel console ---------------------------------------------------------------------

async def _panel_user(request: web.Request) -> User | web.Response:
    """The panel member behind this page, or the response to send instead (login page
    for no session, a 403 page for another role or a failed CSRF check)."""
    try:
        return await require_user(request, roles=("panel",))
    except Unauthorized:
        target = urllib.parse.quote(request.path_qs, safe="")
        raise web.HTTPSeeOther(f"/panel/login?next={target}") from None
    except Forbidden as e:
        return render("message.html", request, {"title": "403", "message": e.message},
                      status=403)


def _csrf(request: web.Request) -> str:
    return csrf_token(request.app[web_keys.SETTINGS].secret_key,
                      request.cookies.get(SESSION_COOKIE, ""))


def _next(value: object) -> str:
    # Only same-site paths inside the console: no open redirects.
    return safe_next(value, default=PANEL, prefix=PANEL)


def _login_form(request: web.Request, target: str, error: str | None,
                status: int = 200) -> web.Response:
    token = new_login_csrf()
    response = render("login.html", request, {"next": target, "error": error,
                                              "login_csrf": token}, status=status)
    set_login_csrf_cookie(request, response, token, LOGIN_PATH)
    return response


async def login_page(request: web.Request) -> web.Response:
    return _login_form(request, _next(request.query.get("next")), None)


async def login_submit(request: web.Request) -> web.Response:
    _ = request.app[keys.MESSAGES].gettext
    form = await read_form(request)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = _next(form.get("next"))
    i18n.set_locale(i18n.negotiate(request)[0])
    if not login_csrf_ok(request, form):
        return _login_form(request, target, _("Your form expired; please try again."), 403)
    try:
        user, token = await attempt_login(request, username, password)
    except LoginThrottled as e:
        response = _login_form(request, target,
                               _("Too many failed logins; try again in a minute."), 429)
        response.headers["Retry-After"] = str(e.retry_after)
        return response
    except (InvalidCredentials, ValueError):
        return _login_form(request, target, _("Wrong username or password"), 401)
    if user.role != "panel":
        return _login_form(request, target, _("This console is for panel members only"),
                           403)
    response = web.Response(status=303, headers={"Location": target})
    set_session_cookie(request, response, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


async def queue_page(request: web.Request) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    try:
        # The page's own parameters (lang, done, error) are not filters.
        f = queue_filter({k: v for k, v in request.query.items()
                          if k in panel.QueueFilter.model_fields})
    except ApiError:
        f = panel.QueueFilter()  # a hand-edited address: show the whole queue
    async with request.app[web_keys.POOL].acquire() as conn:
        items = await panel.review_queue(conn, request.app[keys.CLOCK].now(), f)
        checkpoint = await audit.latest(conn)
        drafts = await findings.pending(conn)
        declared = await conflicts.listing(conn)
        accounts = await account_audit(conn, limit=20)
    return render("queue.html", request, {
        "user": user, "items": items, "csrf": _csrf(request), "checkpoint": checkpoint,
        "drafts": drafts, "conflicts": declared, "account_changes": accounts,
        "agencies": list(request.app[keys.CATALOG].agencies.values()),
        "regions": list(request.app[keys.CATALOG].regions.values()),
        "reasons": QUEUE_REASONS, "filter": f,
        "next_page": _next_page(request, items, f),
        "error": request.query.get("error"), "notice": request.query.get("done")})


QUEUE_REASONS = ("breach", "dispute", "low_rating", "audit_sample")


def _next_page(request: web.Request, items: list[dict[str, Any]],
               f: panel.QueueFilter) -> str | None:
    if len(items) < f.limit:
        return None
    query = {k: v for k, v in request.query.items() if k not in ("after", "done", "error")}
    query["after"] = panel.queue_cursor(items[-1])
    return f"{PANEL}?{urllib.parse.urlencode(query)}"


async def logout_action(request: web.Request) -> web.Response:
    """End the session (CSRF-checked form) and go back to the login page."""
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await logout(request.app[web_keys.POOL], token)
    response = web.Response(status=303, headers={"Location": LOGIN_PATH})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def conflict_action(request: web.Request) -> web.Response:
    """Declare (``/panel/conflicts``) or end (``/panel/conflicts/end``) one's own
    conflict of interest."""
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    form = await read_form(request)
    pool = request.app[web_keys.POOL]
    agency = str(form.get("agency", ""))
    try:
        if request.match_info.get("end"):
            await conflicts.withdraw(pool, user.username, agency)
            raise web.HTTPSeeOther("/panel?done=conflict_ended#conflicts")
        if agency not in request.app[keys.CATALOG].agencies:
            raise web.HTTPSeeOther("/panel?error=agency#conflicts")
        body = conflicts.ConflictIn(agency=agency, reason=str(form.get("reason", "")))
    except (ValidationError, ApiError):
        raise web.HTTPSeeOther("/panel?error=conflict_form#conflicts") from None
    await conflicts.declare(pool, user.username, body, request.app[keys.CLOCK].now())
    raise web.HTTPSeeOther("/panel?done=conflict_declared#conflicts")


async def checkpoint_action(request: web.Request) -> web.Response:
    """A panel member signs and publishes a checkpoint now (CSRF-checked form)."""
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    async with request.app[web_keys.POOL].acquire() as conn:
        await audit.make_checkpoint(conn, request.app[keys.SIGNING_KEY], datetime.now(UTC),
                                    requested_by=user.username)
    raise web.HTTPSeeOther("/panel#checkpoint")


async def case_page(request: web.Request, *, error: str | None = None,
                    status: int = 200) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    async with request.app[web_keys.POOL].acquire() as conn:
        case = await panel.timeline(conn, request.match_info["tracking_code"],
                                    request.app[keys.CLOCK].now())
    catalog = request.app[keys.CATALOG]
    region = catalog.regions.get((case.get("case") or {}).get("region") or "")
    # The agency's internal notes, from the router (services/oversight/notes.py);
    # None when it does not answer in time: the rest of the page shows regardless.
    case_notes = await notes.case_notes(request.app, case["complaint_id"],
                                        caller_token(request))
    return render("case.html", request, {
        "tz": region.timezone if region else timefmt.DEFAULT_TZ, "user": user, "case": case,
        "csrf": _csrf(request), "error": error,
        "notice": request.query.get("done"), "notes": case_notes,
        "agency_names": {code: a.name for code, a in catalog.agencies.items()},
    }, status=status)


async def case_action(request: web.Request) -> web.Response:
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    code = request.match_info["tracking_code"]
    action = request.match_info["action"]
    form = await read_form(request)
    pool = request.app[web_keys.POOL]
    now = request.app[keys.CLOCK].now()
    try:
        if action == "claim":
            await panel.claim(pool, code, user.username, now)
        elif action == "release":
            await panel.release(pool, code, user.username, now)
        elif action == "findings":
            await findings.draft(pool, code, _finding_form(form), user.username, now)
        elif action in ("confirm", "cancel"):
            proposal = _form_id(form, "proposal_id")
            if action == "confirm":
                await findings.confirm(pool, proposal, user.username, now)
            else:
                await findings.cancel(pool, proposal, user.username, now)
        elif action == "amend":
            await findings.propose_change(pool, _form_id(form, "finding_id"), "amend",
                                          _finding_form(form), str(form.get("reason", "")),
                                          user.username, now)
        elif action == "withdraw":
            await findings.propose_change(pool, _form_id(form, "finding_id"), "withdraw",
                                          None, str(form.get("reason", "")), user.username,
                                          now)
        elif action == "reopen":
            await panel.reopen(pool, code, panel.ReopenIn(reason=str(form.get("reason", ""))),
                               user.username, now)
        elif action == "reject-dispute":
            await panel.reject_dispute(
                pool, code, panel.RejectDisputeIn(reason=str(form.get("reason", ""))),
                user.username, now)
        else:
            raise web.HTTPNotFound()
    except ValidationError as e:
        return await case_page(request, error="; ".join(err["msg"] for err in e.errors()),
                               status=422)
    except ApiError as e:
        if e.status == 404 and action not in ("confirm", "cancel", "amend", "withdraw",
                                              "release"):
            raise
        i18n.set_locale(i18n.negotiate(request)[0])  # messages made before render()
        _ = request.app[keys.MESSAGES].gettext
        message = {
            "own_proposal": _("Another panel member must confirm this, not its author."),
            "conflict_of_interest": _("You declared a conflict of interest with this agency."),
            "proposal_pending": _("A proposal is already waiting for confirmation."),
            "not_pending": _("This proposal was decided already."),
            "not_author": _("Only its author can take back a proposal."),
            "not_claim_holder": _("Another panel member holds this case."),
        }.get(e.code, e.message)
        return await case_page(request, error=message, status=e.status)
    raise web.HTTPSeeOther(f"/panel/cases/{urllib.parse.quote(code)}?done={action}")


def _finding_form(form: Any) -> panel.FindingIn:
    # Raises ValidationError, shown on the page like every form error.
    return panel.FindingIn(
        outcome=form.get("outcome"),
        maladministration_type=form.get("maladministration_type") or None,
        recommendation=str(form.get("recommendation", "")),
        published=form.get("published") == "on",
    )


def _form_id(form: Any, name: str) -> int:
    raw = str(form.get(name, ""))
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No such finding or proposal")
    return int(raw)


async def password_page(request: web.Request) -> web.Response:
    """A panel member changes their own password."""
    user = await _panel_user(request)
    if isinstance(user, web.Response):
        return user
    error = notice = None
    status = 200
    if request.method == "POST":
        i18n.set_locale(i18n.negotiate(request)[0])  # messages made before render()
        _ = request.app[keys.MESSAGES].gettext
        form = await read_form(request)
        new = str(form.get("new_password", ""))
        if new != str(form.get("new_password_again", "")):
            error, status = _("The two new passwords differ."), 422
        else:
            try:
                await change_own_password(request, user,
                                          str(form.get("current_password", "")), new)
                notice = _("Your password has been changed.")
            except ApiError as e:
                status = e.status
                error = {
                    "wrong_password": _("The current password is wrong."),
                    "weak_password": _(WEAK_PASSWORD),
                    "rate_limited": _("Too many wrong passwords; try again in a minute."),
                }.get(e.code, e.message)
    return render("password.html", request, {"user": user, "csrf": _csrf(request),
                                             "error": error, "notice": notice},
                  status=status)


def setup(app: web.Application) -> None:
    messages = app[keys.MESSAGES]
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["_"] = messages.gettext
    # {{ at | when(tz, locale) }}: awasi.timefmt, the one format of every page.
    env.filters.update(timefmt.jinja_filters())
    r = app.router
    r.add_get("/", dashboard)
    r.add_get(LOGIN_PATH, login_page)
    r.add_post(LOGIN_PATH, login_submit)
    r.add_get("/panel", queue_page)
    r.add_post("/panel/checkpoint", checkpoint_action)
    r.add_get("/panel/cases/{tracking_code}", case_page)
    r.add_post("/panel/cases/{tracking_code}/"
               "{action:claim|release|findings|reopen|reject-dispute|confirm|cancel|amend|withdraw}",
               case_action)
    r.add_post("/panel/logout", logout_action)
    r.add_post("/panel/conflicts", conflict_action)
    r.add_post("/panel/conflicts/{end:end}", conflict_action)
    r.add_get("/panel/password", password_page)
    r.add_post("/panel/password", password_page)
