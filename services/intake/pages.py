"""The citizen's pages: the complaint form at ``/`` and the status page at
``/status/{tracking_code}`` (with a lookup form), in Bahasa Indonesia by default and
English by choice (``?lang=en``, remembered in a cookie).

They work without JavaScript: plain forms, POST then redirect, and on a validation
error the form comes back filled in with the message next to the field (HTTP 422).
Every form carries a CSRF token: a random value in a cookie, and the same value
signed with the server key in a hidden field; a POST must present both, matching.

After a submission the receipt (tracking code and follow-up secret) is kept for a day
in a signed, HttpOnly cookie scoped to ``/status/``, so the status page can show the
secret once more and pre-fill it in the follow-up forms on the same browser.

The tracking code alone shows the status, the agency and the deadlines. The
conversation (description, the agency's questions and answers, the citizen's own
messages) and the follow-up forms need the receipt cookie of the browser that filed
it, or the follow-up secret typed into the page's form (``/status/{code}/unlock``);
the secret then opens the page for this browser session only (``awasi_follow``, a
session cookie that also expires after 12 hours: a shared computer in a warnet
forgets it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from awasi import i18n, lifecycle, signing, timefmt
from awasi.web import keys
from awasi.web.body import read_form, validate
from awasi.web.errors import ApiError, Forbidden, RateLimited, ValidationFailed
from awasi.web.headers import CONTENT_SECURITY_POLICY
from services.intake import domain, participation, photos, visibility
from services.intake import keys as ikeys
from services.intake.api import submit
from services.intake.errors import IdempotencyKeyReused, UnknownComplaint, field_error

TEMPLATES = Path(__file__).resolve().parent / "templates"
CSRF_COOKIE = "awasi_csrf"
RECEIPT_COOKIE = "awasi_receipt"
RECEIPT_MAX_AGE_S = 86_400
FOLLOW_COOKIE = "awasi_follow"
FOLLOW_MAX_AGE_S = 12 * 3600
FOLLOW_MAX_CODES = 10
CSRF_MAX_AGE_S = 86_400

FORM_FIELDS = ("region", "category", "title", "description", "address", "lat", "lon",
               "privacy", "visibility", "name", "phone", "email", "submission",
               "similar_checked")

# Field-level messages shown next to the field (English msgids, translated in .po).
FIELD_MESSAGES = {
    "region": "Choose your city.",
    "category": "Choose a category offered in your city.",
    "title": "The title may be at most 200 characters.",
    "description": "Describe the problem in 10 to 4,000 characters.",
    "address": "The address may be at most 500 characters.",
    "pin": "The map point must be inside the chosen city: check the city, or move the pin.",
    "privacy": "Choose how your identity is handled.",
    "name": "A named report needs your name.",
    "phone": "Enter a phone number with digits only, e.g. +62 812 3456 7890.",
    "email": "Enter an e-mail address like nama@contoh.id.",
    "photos": "Up to 3 photos, JPEG, PNG or WebP, at most 5 MB each.",
    "secret": "The follow-up secret is wrong.",
    "rating": "Choose a rating from 1 to 5, or dispute the resolution.",
    "message": "Write your answer (up to 4,000 characters).",
    "code": "No complaint has this tracking code. Check it and try again.",
}

# One label per status of the one lifecycle (awasi/lifecycle.py).
STATUS_LABELS = {
    "submitted": "Received",
    "triage": "Being verified",
    "assigned": "Forwarded to the agency",
    "acknowledged": "Being handled by the agency",
    "waiting_info": "The agency needs more information from you",
    "resolved": "Resolved by the agency",
    "reopened": "Reopened",
    "closed": "Closed",
    "archived": "Archived: the agency's question was not answered",
    "rejected": "Not accepted as a complaint",
    "withdrawn": "Withdrawn",
}

TIMELINE_LABELS = {
    "submitted": "Complaint received",
    "complaint.routed": "Forwarded to the responsible agency",
    "complaint.needs_triage": "Waiting for verification by the city",
    "ticket.acknowledged": "The agency started handling it",
    "ticket.info_requested": "The agency asked you a question",
    "ticket.responded": "The agency responded",
    "ticket.attachment_added": "The agency sent you a file",
    "ticket.resolved": "The agency marked it resolved",
    "ticket.transferred": "Transferred to another agency",
    "ticket.reopened": "Reopened",
    "deadline.breached": "A deadline was missed",
    "case.escalated": "Escalated",
    "finding.recorded": "The oversight panel recorded a finding",
    "case.reopened": "Reopened by the oversight panel",
    "ticket.clock_resumed": "The agency's clock runs again",
    "case.closed": "Closed",
    "ticket.rejected": "Not accepted as a complaint",
    "ticket.duplicate_linked": "Closed as a duplicate: the same problem is already being handled",
    "ticket.moved_region": "Sent to the responsible city",
    "case.info_reminder": "Reminder: the agency still waits for your answer",
    "case.archived": "Archived: the agency's question was not answered",
    "ticket.returned_to_triage": "Back with the city for a decision on the responsible agency",
    "info_added": "You added information",
    "feedback_given": "You gave feedback",
    "withdrawn": "You withdrew the complaint",
}

# The public timeline of a public report, told in the third person (anyone reads it).
PUBLIC_TIMELINE_LABELS = {
    "submitted": "Report received",
    "complaint.routed": "Forwarded to the responsible agency",
    "complaint.needs_triage": "Waiting for verification by the city",
    "ticket.acknowledged": "The agency started handling it",
    "ticket.info_requested": "The agency asked the reporter for more information",
    "ticket.responded": "The agency responded to the reporter",
    "ticket.resolved": "The agency marked it resolved",
    "ticket.transferred": "Transferred to another agency",
    "ticket.reopened": "Reopened",
    "deadline.breached": "A deadline was missed",
    "case.escalated": "Escalated",
    "case.reopened": "Reopened by the oversight panel",
    "withdrawn": "Withdrawn by the reporter",
    "ticket.duplicate_linked": "Closed as a duplicate: the same problem is already being handled",
}

DEADLINE_LABELS = {
    "triage": "Verification by the city",
    "acknowledge": "Agency starts handling",
    "resolve": "Resolution",
}


def see_other(location: str) -> web.Response:
    """POST-redirect-GET (303) as a response we can still set cookies on."""
    return web.Response(status=303, headers={"Location": location})


# --- locale, CSRF ------------------------------------------------------------------------

def pick_locale(request: web.Request) -> str:
    """``?lang=``, else the cookie, else Bahasa Indonesia. The browser's
    Accept-Language is not consulted: many phones in Indonesia are set to English,
    and the city's pages speak Indonesian unless the citizen chooses otherwise."""
    return (i18n.normalize(request.query.get("lang"))
            or i18n.normalize(request.cookies.get(i18n.COOKIE))
            or i18n.DEFAULT)


def _csrf_cookie(request: web.Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def check_csrf(request: web.Request, form: MultiDictProxy[Any]) -> None:
    """Raise ``Forbidden`` unless the hidden field is the cookie's value, signed by us."""
    cookie = request.cookies.get(CSRF_COOKIE)
    token = form.get("csrf")
    if not cookie or not isinstance(token, str):
        raise Forbidden("Missing CSRF token", code="csrf")
    try:
        value = signing.verify(request.app[keys.SETTINGS].secret_key, "csrf", token,
                               CSRF_MAX_AGE_S)
    except signing.InvalidSignature as e:
        raise Forbidden("Invalid CSRF token", code="csrf") from e
    if not secrets.compare_digest(str(value), cookie):
        raise Forbidden("Invalid CSRF token", code="csrf")


class Page:
    """Per-request rendering context: the locale, gettext and the CSRF pair."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.locale = pick_locale(request)
        self.messages = request.app[ikeys.MESSAGES]
        self.csrf_cookie = _csrf_cookie(request)
        self.csrf = signing.sign(request.app[keys.SETTINGS].secret_key, "csrf",
                                 self.csrf_cookie)
        # Pages with a map (the form's pin, the reports page) run our own scripts and
        # load tiles from the configured server; every other page runs none.
        self.with_map = False

    def gettext(self, message: str, **params: Any) -> str:
        return self.messages.gettext(message, self.locale, **params)

    def render(self, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
        catalog = self.request.app[ikeys.CATALOG]
        ctx = {
            "_": self.gettext, "lang": self.locale,
            "other_lang": "en" if self.locale == "id" else "id",
            "csrf": self.csrf, "path": self.request.path, "catalog": catalog,
            **context,
        }
        response = aiohttp_jinja2.render_template(template, self.request, ctx, status=status)
        self.finish(response)
        return response

    def finish(self, response: web.StreamResponse) -> None:
        response.set_cookie(CSRF_COOKIE, self.csrf_cookie, httponly=True, samesite="Lax",
                            max_age=CSRF_MAX_AGE_S, path="/")
        if i18n.normalize(self.request.query.get("lang")):
            response.set_cookie(i18n.COOKIE, self.locale, max_age=365 * 86_400, path="/",
                                samesite="Lax")
        response.headers["Content-Language"] = self.locale
        response.headers.setdefault("Cache-Control", "no-store")
        # CSP (no inline script, no framing), Referrer-Policy and nosniff come from
        # awasi.web.headers, on every response of every service; map pages also load
        # tiles from the tile server (our own map script is 'self' already).
        if self.with_map:
            tiles = tile_origin(self.request.app[keys.SETTINGS].map_tile_url)
            response.headers["Content-Security-Policy"] = (
                f"{CONTENT_SECURITY_POLICY}; img-src 'self' data: {tiles}")


def tile_origin(template: str) -> str:
    """The CSP source of a tile URL template (``{s}`` subdomains become ``*``)."""
    parts = urlsplit(template.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'none'"


def fmt_dt(value: str | datetime | None, tz: str, locale: str) -> str:
    """A time on a citizen's page: ``awasi.timefmt``, the one format of every page."""
    return timefmt.format_datetime(value, tz, locale)


def _field_of(api_field: str) -> str:
    head = api_field.split(".")[0]
    if head == "reporter":
        return api_field.split(".")[-1]
    if head == "location":
        return "address" if api_field == "location.address" else "pin"
    return head


def form_errors(e: ApiError, page: Page) -> dict[str, str]:
    errors: dict[str, str] = {}
    fields = e.details.get("fields", []) if isinstance(e.details, dict) else []
    for f in fields:
        name = _field_of(str(f.get("field", "")))
        if name not in errors:
            errors[name] = page.gettext(FIELD_MESSAGES.get(name, "Please check this field."))
    if not errors:
        errors["form"] = e.message
    return errors


async def _uploaded_photos(request: web.Request, form: MultiDictProxy[Any],
                           field: str = "photos") -> list[photos.Photo]:
    """The form's photos, re-encoded without metadata (422 naming ``field``)."""
    files = [f for f in form.getall(field, []) if isinstance(f, web.FileField)]
    raws = [f.file.read() for f in files]
    raws = [r for r in raws if r]
    photos.check_count(len(raws), field)
    return await request.app[ikeys.PHOTOS].clean_all([(r, field) for r in raws])


# --- the complaint form ------------------------------------------------------------------

def _form_context(request: web.Request, values: dict[str, str],
                  errors: dict[str, str], similar: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
    catalog = request.app[ikeys.CATALOG]
    region = values.get("region") or ""
    chosen = region in catalog.regions
    cats = catalog.categories_for(region) if chosen else list(catalog.categories.values())
    box = catalog.regions[region].bbox if chosen else None
    return {"values": values, "errors": errors, "regions": list(catalog.regions.values()),
            "categories": cats, "region_chosen": chosen, "similar": similar or [],
            "bbox": box, "tiles": request.app[keys.SETTINGS].map_tile_url,
            "tile_attribution": request.app[keys.SETTINGS].map_tile_attribution}


def _point(values: dict[str, str]) -> dict[str, float] | None:
    """The pin from the form's ``lat``/``lon`` text (decimal comma accepted); None if
    both are blank. Raises ``ValidationFailed`` naming ``location`` for text that is
    not a number, or one of the two alone."""
    raw = [values["lat"].replace(",", "."), values["lon"].replace(",", ".")]
    if not any(raw):
        return None
    try:
        lat, lon = (float(x) for x in raw)
    except ValueError as e:
        raise field_error("location", "give the point as two decimal numbers",
                          "bad_point") from e
    return {"lat": lat, "lon": lon}


async def form_page(request: web.Request) -> web.Response:
    page = Page(request)
    # ``submission`` is the form's own Idempotency-Key: a double click, or the browser
    # re-sending the POST, files one complaint and shows the same receipt.
    values = {"privacy": "confidential", "region": request.query.get("region", ""),
              "submission": secrets.token_urlsafe(18)}
    page.with_map = True
    return page.render("form.html", _form_context(request, values, {}))


async def form_submit(request: web.Request) -> web.StreamResponse:
    page = Page(request)
    page.with_map = True
    form = await read_form(request)
    check_csrf(request, form)
    values = {k: str(form.get(k, "")).strip() for k in FORM_FIELDS}
    if form.get("step") == "city":
        # "Show this city's categories": the form comes back with the chosen city's
        # categories and everything typed so far, nothing filed (no JavaScript needed).
        catalog = request.app[ikeys.CATALOG]
        offered = ({c.code for c in catalog.categories_for(values["region"])}
                   if values["region"] in catalog.regions else set())
        if values["category"] not in offered:
            values["category"] = ""
        return page.render("form.html", _form_context(request, values, {}))
    try:
        point = _point(values)
        similar = await _similar_step(request, page, values, point)
        if similar:
            # Similar open public reports exist: offer them (support one instead) and
            # keep the form, filled in, one tap away from filing anyway. A browser
            # never re-sends chosen files, so the citizen is told to choose them again.
            values["similar_checked"] = "1"
            if any(isinstance(f, web.FileField) and f.filename
                   for f in form.getall("photos", [])):
                values["had_photos"] = "1"
            return page.render("form.html", _form_context(request, values, {}, similar))
        await request.app[ikeys.LIMITER].check(request)
        data: dict[str, Any] = {
            "region": values["region"], "category": values["category"],
            "title": values["title"] or None, "description": values["description"],
            "privacy": values["privacy"] or "confidential",
            # An unticked checkbox sends nothing: private unless the citizen ticked it.
            "visibility": "public" if values["visibility"] == "public" else "private",
            "reporter": {"name": values["name"], "phone": values["phone"],
                         "email": values["email"]},
        }
        if values["address"] or point:
            data["location"] = {"address": values["address"] or None, **(point or {})}
        body = validate(domain.ComplaintIn, data)
        uploaded = await _uploaded_photos(request, form)
        key, digest = None, None
        if 8 <= len(values["submission"]) <= 64:
            key = f"web:{values['submission']}"
            h = hashlib.sha256(json.dumps(values, sort_keys=True).encode())
            for ph in uploaded:
                h.update(hashlib.sha256(ph.data).digest())
            digest = h.digest()
        receipt = await submit(request.app, domain.SubmitCommand(
            region=body.region, category=body.category, description=body.description,
            title=body.title, location=body.location, reporter=body.reporter,
            privacy=body.privacy, visibility=body.visibility, channel="web", photos=uploaded,
            idempotency_key=key, request_hash=digest, locale=page.locale))
    except RateLimited as e:
        errors = {"form": page.gettext("Too many reports from your connection. Please try "
                                       "again in %(s)s seconds.", s=e.details["retry_after_s"])}
        response = page.render("form.html", _form_context(request, values, errors), status=429)
        response.headers.update(e.headers)
        return response
    except ValidationFailed as e:
        return page.render("form.html", _form_context(request, values, form_errors(e, page)),
                           status=422)
    except IdempotencyKeyReused:
        # The same form sent again with other content: treat it as a new form.
        values["submission"] = secrets.token_urlsafe(18)
        errors = {"form": page.gettext("This form was already sent. Check your details and "
                                       "send it again.")}
        return page.render("form.html", _form_context(request, values, errors), status=409)
    response = see_other(f"/status/{receipt.tracking_code}")
    token = signing.sign(request.app[keys.SETTINGS].secret_key, "receipt",
                         {"code": receipt.tracking_code, "secret": receipt.secret})
    response.set_cookie(RECEIPT_COOKIE, token, httponly=True, samesite="Lax",
                        max_age=RECEIPT_MAX_AGE_S, path="/status/")
    page.finish(response)
    return response


async def _similar_step(request: web.Request, page: Page, values: dict[str, str],
                        point: dict[str, float] | None) -> list[dict[str, Any]]:
    """The similar open public reports to offer before filing: none once the citizen
    saw them (``similar_checked``), or when the city, category or text are not valid
    yet (the submission then reports that)."""
    catalog = request.app[ikeys.CATALOG]
    if values["similar_checked"] or len(values["description"]) < domain.DESCRIPTION_MIN:
        return []
    try:
        participation.check_similar_input(catalog, values["region"], values["category"])
    except ValidationFailed:
        return []
    rows = await participation.similar(
        request.app[keys.POOL], request.app[ikeys.TRIGRAM], values["region"],
        values["category"], f"{values['title']} {values['description']}",
        point["lat"] if point else None, point["lon"] if point else None)
    now = datetime.now(UTC)
    return [{**visibility.public_report(catalog, r, now),
             "status_label": page.gettext(STATUS_LABELS.get(r["status"], r["status"]))}
            for r in rows]


# --- the status page ---------------------------------------------------------------------

def _receipt_secret(request: web.Request, code: str) -> str | None:
    token = request.cookies.get(RECEIPT_COOKIE)
    if not token:
        return None
    try:
        data = signing.verify(request.app[keys.SETTINGS].secret_key, "receipt", token,
                              RECEIPT_MAX_AGE_S)
    except signing.InvalidSignature:
        return None
    if isinstance(data, dict) and data.get("code") == code:
        return str(data.get("secret"))
    return None


def _followed(request: web.Request) -> list[str]:
    """The codes this browser session unlocked with their secret (newest last)."""
    token = request.cookies.get(FOLLOW_COOKIE)
    if not token:
        return []
    try:
        codes = signing.verify(request.app[keys.SETTINGS].secret_key, "follow", token,
                               FOLLOW_MAX_AGE_S)
    except signing.InvalidSignature:
        return []
    return [str(c) for c in codes] if isinstance(codes, list) else []


def grant_conversation(request: web.Request, response: web.StreamResponse, code: str) -> None:
    """Open ``code``'s conversation to this browser session (after its secret was
    given): a signed session cookie with the codes only, never the secret."""
    codes = [c for c in _followed(request) if c != code][-(FOLLOW_MAX_CODES - 1):] + [code]
    token = signing.sign(request.app[keys.SETTINGS].secret_key, "follow", codes)
    # No Max-Age: gone when the browser closes; the signature's age caps it at 12 h.
    response.set_cookie(FOLLOW_COOKIE, token, httponly=True, samesite="Lax", path="/status/")


def may_see_conversation(request: web.Request, code: str) -> bool:
    """This browser filed ``code`` (receipt cookie) or unlocked it with the secret."""
    return _receipt_secret(request, code) is not None or code in _followed(request)


async def lookup(request: web.Request) -> web.StreamResponse:
    """``GET /status?code=``: go to that complaint's page, or show the lookup form."""
    page = Page(request)
    raw = request.query.get("code", "").strip()
    if raw:
        code = domain.normalize_code(raw)
        exists = await request.app[keys.POOL].fetchval(
            "SELECT 1 FROM intake.complaints WHERE tracking_code = $1", code)
        if exists:
            return see_other(f"/status/{code}")
        return page.render("lookup.html", {"code": raw, "errors": {
            "code": page.gettext(FIELD_MESSAGES["code"])}}, status=404)
    return page.render("lookup.html", {"code": "", "errors": {}})


async def _render_status(request: web.Request, page: Page, errors: dict[str, str] | None = None,
                         values: dict[str, str] | None = None, status: int = 200) -> web.Response:
    code = request.match_info["tracking_code"]
    catalog = request.app[ikeys.CATALOG]
    normal = domain.normalize_code(code)
    try:
        settings = request.app[keys.SETTINGS]
        s = await domain.complaint_status(
            request.app[keys.POOL], catalog, normal, owner=may_see_conversation(request, normal),
            attachment_link=visibility.attachment_links(settings.secret_key,
                                                        settings.router_url))
    except UnknownComplaint:
        return page.render("lookup.html", {"code": code, "errors": {
            "code": page.gettext(FIELD_MESSAGES["code"])}}, status=404)
    region = catalog.regions.get(s["region"]["code"])
    tz = region.timezone if region else "Asia/Jakarta"
    secret = _receipt_secret(request, s["tracking_code"])
    deadlines = []
    for kind, key in (("triage", "triage_by"), ("acknowledge", "acknowledge_by"),
                      ("resolve", "resolve_by")):
        if s["deadlines"][key]:
            deadlines.append({"label": page.gettext(DEADLINE_LABELS[kind]),
                              "at": fmt_dt(s["deadlines"][key], tz, page.locale),
                              "overdue": s["overdue"][kind]})
    # The entry first, then what the page shows instead: spread last, the entry's own
    # ``at`` (UTC, ISO) overwrote the local time (seen on the unlocked page).
    timeline = [{**e, "label": page.gettext(TIMELINE_LABELS.get(e["kind"], e["kind"])),
                 "at": fmt_dt(e["at"], tz, page.locale)} for e in s.get("timeline", [])]
    full = s["access"] == "conversation"
    ctx = {
        "s": s, "secret": secret, "status_label": page.gettext(STATUS_LABELS.get(s["status"],
                                                                                 s["status"])),
        "deadlines": deadlines, "timeline": timeline,
        "full": full,
        "category_name": (s["category"]["name_en" if page.locale == "en" else "name_id"]
                          if full else None),
        "dispute_until": fmt_dt(s["deadlines"]["dispute_until"], tz, page.locale),
        "errors": errors or {}, "values": values or {},
        "can_add_info": full and bool({"add_info", "revive"}
                                      & set(lifecycle.citizen_actions(s["status"]))),
        "can_withdraw": full and "withdraw" in lifecycle.citizen_actions(s["status"]),
        "agency_names": {a.code: a.name for a in catalog.agencies.values()},
    }
    return page.render("status.html", ctx, status=status)


async def status_page(request: web.Request) -> web.StreamResponse:
    code = request.match_info["tracking_code"]
    normal = domain.normalize_code(code)
    if normal != code:
        return see_other(f"/status/{normal}")
    return await _render_status(request, Page(request))


def _action_errors(e: ApiError, page: Page) -> dict[str, str]:
    if e.code == "wrong_secret":
        return {"secret": page.gettext(FIELD_MESSAGES["secret"])}
    if e.code == "not_allowed_now":
        return {"form": page.gettext("This is not possible at this stage of the complaint.")}
    return form_errors(e, page)


async def _action(request: web.Request, fields: tuple[str, ...],
                  run: Callable[[MultiDictProxy[Any], Page], Any]) -> web.StreamResponse:
    page = Page(request)
    form = await read_form(request)
    check_csrf(request, form)
    values = {k: str(form.get(k, "")).strip() for k in fields}
    try:
        await run(form, page)
    except ApiError as e:
        status = e.status if e.status in (403, 409, 422) else 400
        return await _render_status(request, page, _action_errors(e, page), values, status)
    code = domain.normalize_code(request.match_info["tracking_code"])
    response = see_other(f"/status/{code}")
    # The action took the right secret: it may as well open the conversation.
    grant_conversation(request, response, code)
    page.finish(response)
    return response


async def unlock_submit(request: web.Request) -> web.StreamResponse:
    """``POST /status/{code}/unlock`` (``secret``): open the conversation for this
    browser session; a wrong secret comes back to the page with the message."""
    async def run(form: MultiDictProxy[Any], page: Page) -> None:
        secret = str(form.get("secret", "")).strip()[:64] or "-"
        await domain.complaint_status(request.app[keys.POOL], request.app[ikeys.CATALOG],
                                      request.match_info["tracking_code"], secret=secret)

    return await _action(request, ("secret",), run)


async def feedback_submit(request: web.Request) -> web.StreamResponse:
    async def run(form: MultiDictProxy[Any], page: Page) -> None:
        rating = str(form.get("rating", "")).strip()
        body = validate(domain.FeedbackIn, {
            "secret": str(form.get("secret", "")) or "-",
            "rating": int(rating) if rating.isdigit() else None,
            "comment": str(form.get("comment", "")) or None,
            "dispute": form.get("dispute") in ("1", "on", "true"),
        })
        await domain.give_feedback(request.app[keys.POOL], request.app[ikeys.CATALOG],
                                   request.match_info["tracking_code"], body)

    return await _action(request, ("secret", "rating", "comment", "dispute"), run)


async def info_submit(request: web.Request) -> web.StreamResponse:
    async def run(form: MultiDictProxy[Any], page: Page) -> None:
        body = validate(domain.InfoIn, {"secret": str(form.get("secret", "")) or "-",
                                        "message": str(form.get("message", ""))})
        uploaded = await _uploaded_photos(request, form)
        await domain.add_info(request.app[keys.POOL], request.match_info["tracking_code"],
                              body, uploaded)

    return await _action(request, ("secret", "message"), run)


async def withdraw_submit(request: web.Request) -> web.StreamResponse:
    async def run(form: MultiDictProxy[Any], page: Page) -> None:
        body = validate(domain.WithdrawIn, {"secret": str(form.get("secret", "")) or "-",
                                            "reason": str(form.get("reason", "")) or None})
        await domain.withdraw(request.app[keys.POOL], request.match_info["tracking_code"], body)

    return await _action(request, ("secret", "reason"), run)


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                               autoescape=jinja2.select_autoescape(default=True))
    app[ikeys.JINJA] = env
    r = app.router
    r.add_get("/", form_page)
    r.add_post("/", form_submit)
    r.add_get("/status", lookup)
    r.add_get("/status/{tracking_code}", status_page)
    r.add_post("/status/{tracking_code}/feedback", feedback_submit)
    r.add_post("/status/{tracking_code}/info", info_submit)
    r.add_post("/status/{tracking_code}/withdraw", withdraw_submit)
    r.add_post("/status/{tracking_code}/unlock", unlock_submit)
    r.add_static("/static/", TEMPLATES / "static", name="static")

