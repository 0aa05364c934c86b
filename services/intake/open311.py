"""Open311 GeoReport v2 under ``/open311/v2/``, in ``.json`` and ``.xml``.

Mapping onto a complaint (decisions recorded in docs/INTAKE.md):
- ``jurisdiction_id`` is the region code (required on POST: this endpoint serves
  several jurisdictions); ``service_code`` is the category code;
- ``lat``/``long`` and/or ``address_string`` (``address_id`` is accepted as an
  address); one of them is required, as the spec says;
- ``first_name``/``last_name``/``email``/``phone`` are the reporter's contact;
  privacy comes from ``attribute[privacy]`` (named, confidential, anonymous), else
  ``confidential`` when a contact was given and ``anonymous`` when none was;
- ``attribute[visibility]`` is ``public`` or ``private`` (default ``private``);
- ``media_url`` is kept as a link (never fetched: intake does not call out);
- ``service_request_id`` is the tracking code; the POST answers it at once (the
  ``token`` resource maps the complaint id to it for clients that ask);
  the POST answer also carries ``secret`` (an extension), the follow-up secret.
- ``GET requests`` and ``requests/{id}`` show PUBLIC reports only, each from the
  allow-list of ``visibility.public_report`` (never a name, contact, Telegram id,
  follow-up message or photo); a private report's id is a 404, like an unknown one.
- ``api_key`` is accepted and not required (the per-address rate limit applies).
Errors use the spec's shape and codes: 400 bad or missing input, 404 unknown
jurisdiction, service or request, 429 too many submissions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from awasi import i18n, lifecycle
from awasi.catalog import Catalog
from awasi.events.payloads import Location
from awasi.web import keys
from awasi.web.body import read_form
from awasi.web.errors import ApiError, RateLimited
from awasi.web.responses import json_response
from services.intake import domain, reports, visibility
from services.intake import keys as ikeys
from services.intake.api import submit

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-23T00:00:00Z"
FORMATS = {"json": "application/json", "xml": "text/xml"}
PLURAL = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute",
          "values": "value", "keywords": "keyword"}
# Open311's "closed": the agency says it is done, or the lifecycle ended it.
CLOSED = ("resolved", *lifecycle.ENDED)
MAX_LIST = 1000


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


# --- rendering ---------------------------------------------------------------------------

def _xml_value(parent: ET.Element, tag: str, value: Any) -> None:
    el = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for k, v in value.items():
            _xml_value(el, k, v)
    elif isinstance(value, list):
        for item in value:
            _xml_value(el, PLURAL.get(tag, "item"), item)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = str(value)


def render(fmt: str, root: str, item: str | None, data: Any, status: int = 200) -> web.Response:
    """JSON as is; XML as ``<root><item>...</item></root>`` (UTF-8 with declaration)."""
    if fmt == "json":
        return json_response(data, status=status)
    top = ET.Element(root)
    if item is None:
        for k, v in data.items():
            _xml_value(top, k, v)
    else:
        for entry in data:
            _xml_value(top, item, entry)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8")
    return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")


def error(fmt: str, status: int, description: str,
          headers: dict[str, str] | None = None) -> web.Response:
    response = render(fmt, "errors", "error", [{"code": status, "description": description}],
                      status)
    response.headers.update(headers or {})
    return response


def _fmt(request: web.Request) -> str:
    return request.match_info.get("fmt", "json")


def handler(fn: Any) -> Any:
    """Turn ``Open311Error`` and our API errors into the spec's error list."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        fmt = _fmt(request)
        try:
            return await fn(request, fmt)  # type: ignore[no-any-return]
        except Open311Error as e:
            return error(fmt, e.status, e.description)
        except RateLimited as e:
            return error(fmt, 429, e.message, e.headers)
        except ApiError as e:
            fields = e.details.get("fields", []) if isinstance(e.details, dict) else []
            desc = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or e.message
            return error(fmt, 400 if e.status == 422 else e.status, desc)

    wrapped.__name__ = fn.__name__
    return wrapped


# --- services ----------------------------------------------------------------------------

def _region(catalog: Catalog, jurisdiction: str | None, *, required: bool) -> str | None:
    if not jurisdiction:
        if required:
            raise Open311Error(400, "jurisdiction_id was not provided")
        return None
    if jurisdiction not in catalog.regions:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction!r} was not found")
    return jurisdiction


def _service(c: Any, locale: str) -> dict[str, Any]:
    return {"service_code": c.code, "service_name": c.name(locale),
            "description": (c.description_en if locale == "en" else c.description_id) or
            c.name(locale),
            "metadata": True, "type": "realtime", "keywords": c.group, "group": c.group}


def _locale(request: web.Request) -> str:
    return "en" if request.query.get("locale", "").lower().startswith("en") else "id"


@handler
async def discovery(request: web.Request, fmt: str) -> web.Response:
    settings = request.app[keys.SETTINGS]
    data = {"changeset": CHANGESET, "contact": "Awasi intake",
            "key_service": "api_key is not required",
            "endpoints": [{"specification": SPEC, "url": f"{settings.intake_url}/open311/v2",
                           "changeset": CHANGESET, "type": "production",
                           "formats": list(FORMATS.values())}]}
    return render(fmt, "discovery", None, data)


@handler
async def services(request: web.Request, fmt: str) -> web.Response:
    catalog = request.app[ikeys.CATALOG]
    region = _region(catalog, request.query.get("jurisdiction_id"), required=False)
    cats = catalog.categories_for(region) if region else list(catalog.categories.values())
    return render(fmt, "services", "service", [_service(c, _locale(request)) for c in cats])


@handler
async def service_definition(request: web.Request, fmt: str) -> web.Response:
    catalog = request.app[ikeys.CATALOG]
    region = _region(catalog, request.query.get("jurisdiction_id"), required=False)
    code = request.match_info["service_code"]
    offered = catalog.categories_for(region) if region else list(catalog.categories.values())
    if code not in {c.code for c in offered}:
        raise Open311Error(404, f"service_code {code!r} was not found")
    data = {"service_code": code, "attributes": [
        {"variable": True, "code": "privacy", "datatype": "singlevaluelist", "required": False,
         "datatype_description": "named, confidential or anonymous", "order": 1,
         "description": "How the reporter's identity is handled",
         "values": [{"key": "named", "name": "Named"},
                    {"key": "confidential", "name": "Confidential"},
                    {"key": "anonymous", "name": "Anonymous"}]},
        {"variable": True, "code": "visibility", "datatype": "singlevaluelist",
         "required": False, "datatype_description": "public or private (default private)",
         "order": 2, "description": "Whether the report (never the reporter) is listed "
                                   "publicly", "values": [{"key": "private", "name": "Private"},
                                                          {"key": "public", "name": "Public"}]},
        {"variable": True, "code": "title", "datatype": "string", "required": False,
         "datatype_description": "up to 200 characters", "order": 3,
         "description": "A short title", "values": []},
    ]}
    return render(fmt, "service_definition", None, data)


# --- requests ----------------------------------------------------------------------------

def _float(form: Any, name: str) -> float | None:
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None


@handler
async def post_request(request: web.Request, fmt: str) -> web.Response:
    app = request.app
    await app[ikeys.LIMITER].check(request)
    catalog = app[ikeys.CATALOG]
    form = await read_form(request)
    region = _region(catalog, str(form.get("jurisdiction_id", "")).strip(), required=True)
    assert region is not None
    service_code = str(form.get("service_code", "")).strip()
    if not service_code:
        raise Open311Error(400, "service_code was not provided")
    if service_code not in {c.code for c in catalog.categories_for(region)}:
        raise Open311Error(400, f"service_code {service_code!r} was not found")
    lat, lon = _float(form, "lat"), _float(form, "long")
    address = str(form.get("address_string", "") or form.get("address_id", "")).strip() or None
    if (lat is None or lon is None) and not address:
        raise Open311Error(400, "lat/long, address_string or address_id was not provided")
    try:
        location = Location(lat=lat if lon is not None else None,
                            lon=lon if lat is not None else None, address=address)
        name = " ".join(p for p in (str(form.get("first_name", "")).strip(),
                                    str(form.get("last_name", "")).strip()) if p)
        reporter = domain.ReporterIn(name=name or None, phone=str(form.get("phone", "")),
                                     email=str(form.get("email", "")))
    except ValidationError as e:
        raise Open311Error(400, "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())) from e
    privacy = str(form.get("attribute[privacy]", "")).strip() or (
        "anonymous" if reporter.is_empty() else "confidential")
    if privacy not in ("named", "confidential", "anonymous"):
        raise Open311Error(400, "attribute[privacy] must be named, confidential or anonymous")
    visibility_ = str(form.get("attribute[visibility]", "")).strip() or "private"
    if visibility_ not in visibility.VISIBILITIES:
        raise Open311Error(400, "attribute[visibility] must be public or private")
    title = str(form.get("attribute[title]", "")).strip()[:200] or None
    media_url = str(form.get("media_url", "")).strip() or None
    if media_url and (len(media_url) > 1000 or not media_url.startswith(("http://", "https://"))):
        raise Open311Error(400, "media_url must be an http(s) URL")
    receipt = await submit(app, domain.SubmitCommand(
        region=region, category=service_code, description=str(form.get("description", "")),
        title=title, location=location, reporter=reporter, privacy=privacy,  # type: ignore[arg-type]
        visibility=visibility_, channel="open311", media_url=media_url,
        locale=(i18n.normalize(str(form.get("locale", "")))
                or i18n.from_accept_language(request.headers.get("Accept-Language"))
                or i18n.DEFAULT)))  # type: ignore[arg-type]
    return render(fmt, "service_requests", "request", [{
        "service_request_id": receipt.tracking_code,
        "service_notice": "Simpan kode pelacakan dan kode rahasia (secret).",
        "account_id": None, "token": receipt.complaint_id, "secret": receipt.secret,
    }])


def _public(row: asyncpg.Record, catalog: Catalog, locale: str) -> dict[str, Any]:
    """A public report in Open311's words, mapped from ``visibility.public_report``
    (the one allow-list): no contact, no follow-up, no media (photos are not part of
    what a public report shows)."""
    r = visibility.public_report(catalog, row)
    category = catalog.categories.get(row["category"])
    location = r["location"] or {}
    return {
        "service_request_id": r["tracking_code"],
        "status": "closed" if r["status"] in CLOSED else "open",
        "status_notes": r["status"],
        "service_name": category.name(locale) if category else r["category"]["code"],
        "service_code": r["category"]["code"],
        "description": r["description"],
        "agency_responsible": r["agency"]["name"] if r["agency"] else None,
        "service_notice": None,
        "requested_datetime": r["submitted_at"],
        "updated_datetime": r["updated_at"],
        "expected_datetime": r["deadlines"]["resolve_by"],
        "address": location.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": location.get("lat"),
        "long": location.get("lon"),
        "media_url": None,
    }


def _date(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@handler
async def get_requests(request: web.Request, fmt: str) -> web.Response:
    app = request.app
    catalog = app[ikeys.CATALOG]
    q = request.query
    region = _region(catalog, q.get("jurisdiction_id"), required=False)
    # Public reports only: the predicate of the partial indexes of 0160_visibility.
    clauses, args = ["visibility = 'public'"], []

    def arg(v: Any) -> str:
        args.append(v)
        return f"${len(args)}"

    ids = [domain.normalize_code(x) for x in q.get("service_request_id", "").split(",")
           if x.strip()]
    if ids:
        clauses.append(f"tracking_code = ANY({arg(ids)}::text[])")
    else:
        end = _date(request, "end_date") or datetime.now(UTC)
        start = _date(request, "start_date") or end - timedelta(days=90)
        clauses += [f"submitted_at >= {arg(start)}", f"submitted_at <= {arg(end)}"]
        if q.get("service_code"):
            clauses.append(f"category = ANY({arg(q['service_code'].split(','))}::text[])")
        statuses = {s.strip() for s in q.get("status", "").split(",") if s.strip()}
        if statuses - {"open", "closed"}:
            raise Open311Error(400, "status must be open and/or closed")
        if statuses == {"open"}:
            clauses.append(f"NOT (status = ANY({arg(list(CLOSED))}::text[]))")
        elif statuses == {"closed"}:
            clauses.append(f"status = ANY({arg(list(CLOSED))}::text[])")
    if region:
        clauses.append(f"region = {arg(region)}")
    rows = await app[keys.POOL].fetch(
        f"SELECT {reports.COLUMNS} FROM intake.complaints WHERE " + " AND ".join(clauses) +
        f" ORDER BY submitted_at DESC LIMIT {MAX_LIST}", *args)
    return render(fmt, "service_requests", "request",
                  [_public(r, catalog, _locale(request)) for r in rows])


@handler
async def get_request(request: web.Request, fmt: str) -> web.Response:
    code = domain.normalize_code(request.match_info["service_request_id"])
    # A private report answers exactly like an unknown one: its id says nothing.
    row = await request.app[keys.POOL].fetchrow(
        f"SELECT {reports.COLUMNS} FROM intake.complaints WHERE tracking_code = $1"
        " AND visibility = 'public'", code)
    if row is None:
        raise Open311Error(404, "service_request_id was not found")
    return render(fmt, "service_requests", "request",
                  [_public(row, request.app[ikeys.CATALOG], _locale(request))])


@handler
async def get_token(request: web.Request, fmt: str) -> web.Response:
    token = request.match_info["token_id"]
    try:
        cid = uuid.UUID(token)
    except ValueError:
        raise Open311Error(404, "token was not found") from None
    code = await request.app[keys.POOL].fetchval(
        "SELECT tracking_code FROM intake.complaints WHERE id = $1", cid)
    if code is None:
        raise Open311Error(404, "token was not found")
    return render(fmt, "service_requests", "request",
                  [{"service_request_id": code, "token": token}])


def setup(app: web.Application) -> None:
    r = app.router
    f = "{fmt:(json|xml)}"
    base = "/open311/v2"
    routes = [
        ("GET", f"{base}/discovery.{f}", discovery, "Service discovery"),
        ("GET", f"{base}/services.{f}", services, "Service list (categories)"),
        ("GET", f"{base}/services/{{service_code}}.{f}", service_definition,
         "Service definition"),
        ("POST", f"{base}/requests.{f}", post_request, "Create a service request"),
        ("GET", f"{base}/requests.{f}", get_requests, "Service requests (public part)"),
        ("GET", f"{base}/requests/{{service_request_id}}.{f}", get_request,
         "One service request (public part)"),
        ("GET", f"{base}/tokens/{{token_id}}.{f}", get_token, "Service request id for a token"),
    ]
    doc = app[keys.OPENAPI].doc["paths"]
    for method, path, fn, summary in routes:
        r.add_route(method, path, fn)
        clean = path.replace(f, "{format}")
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in ("service_code", "service_request_id", "token_id")
                  if "{" + n + "}" in clean]
        params.append({"name": "format", "in": "path", "required": True,
                       "schema": {"type": "string", "enum": ["json", "xml"]}})
        doc.setdefault(clean, {})[method.lower()] = {
            "summary": f"Open311 GeoReport v2: {summary}", "operationId": f"open311_{fn.__name__}",
            "tags": ["open311"], "parameters": params,
            "responses": {"200": {"description": "JSON or XML as in GeoReport v2"},
                          "400": {"description": "[{code, description}]"},
                          "404": {"description": "[{code, description}]"}}}
