"""The satisfaction survey (Survei Kepuasan Masyarakat, PermenPAN-RB No. 14/2017)
per service unit: ``POST /api/v1/surveys/{unit}/responses`` (JSON), the page
``GET /survey/{unit}`` (a plain form: works without JavaScript on any phone), a
printable poster with the page's QR code for the counter (``/survey/{unit}/poster``),
and ``GET /api/v1/survey-units?region=``.

A response is stored and its ``survey.response_submitted`` event written to the
outbox in one transaction; the event carries the answers only (no respondent data,
no comment, no device). Oversight keeps the per-unit, per-day rollups.

Abuse: one counted answer per device (the signed device cookie) or Telegram user per
unit per quarter of the unit's region. A second one is stored and published as a
duplicate (the panel sees how many; the index never counts them). Submissions are
rate limited per device with a per-address ceiling
(``AWASI_SURVEY_RATE_LIMIT_PER_MINUTE``, ``AWASI_RATE_LIMIT_PER_ADDRESS_PER_MINUTE``),
never per address alone.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import segno
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from awasi import periods
from awasi.catalog import Catalog, Unit, UnknownCode
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import SurveyResponseSubmitted
from awasi.ids import new_id
from awasi.ikm import ELEMENTS
from awasi.questionnaire import QUESTIONNAIRE, RESPONDENT_FIELDS, label
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.body import read_form, validate
from awasi.web.errors import ApiError, RateLimited
from awasi.web.responses import json_response
from services.intake import keys as ikeys
from services.intake.api import read_json_limited
from services.intake.device import device_of
from services.intake.errors import field_error
from services.intake.pages import Page, check_csrf, see_other

SCHEMA = "intake"
PRODUCER = "intake"
COMMENT_MAX = 1000
Channel = Literal["web", "api", "telegram"]

Answer = StrictInt


class AnswersIn(BaseModel):
    """Each element U1..U9 answered 1 (worst) to 4 (best)."""

    model_config = ConfigDict(extra="forbid")
    U1: Answer = Field(ge=1, le=4)
    U2: Answer = Field(ge=1, le=4)
    U3: Answer = Field(ge=1, le=4)
    U4: Answer = Field(ge=1, le=4)
    U5: Answer = Field(ge=1, le=4)
    U6: Answer = Field(ge=1, le=4)
    U7: Answer = Field(ge=1, le=4)
    U8: Answer = Field(ge=1, le=4)
    U9: Answer = Field(ge=1, le=4)

    def as_list(self) -> list[int]:
        return [getattr(self, code) for code in ELEMENTS]


class RespondentIn(BaseModel):
    """The regulation form's optional respondent data, each from a closed list."""

    model_config = ConfigDict(extra="forbid")
    age_group: Literal["lt20", "20-29", "30-39", "40-49", "50-59", "60plus"] | None = None
    sex: Literal["L", "P"] | None = None
    education: Literal["sd", "smp", "sma", "diploma", "s1", "s2plus"] | None = None
    occupation: Literal["pns", "tni", "polri", "swasta", "wirausaha", "pelajar",
                        "lainnya"] | None = None


class SurveyIn(BaseModel):
    """``POST /api/v1/surveys/{unit}/responses``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    answers: AnswersIn
    respondent: RespondentIn | None = None
    comment: str | None = Field(default=None, max_length=COMMENT_MAX)


class SurveyReceipt(BaseModel):
    id: str
    unit: str
    period: str
    counted: bool = Field(description="false: this device already answered for this unit "
                                      "in this period; stored as a duplicate, not counted")


class UnitOut(BaseModel):
    code: str
    name: str
    agency: str
    region: str
    population: int | None


@dataclass(frozen=True, slots=True)
class Stored:
    id: uuid.UUID
    unit: str
    period: str
    counted: bool


def respondent_key(settings: Settings, kind: str, ident: str) -> bytes:
    """A stable, one-way key for a device or Telegram user: HMAC under the server key,
    so the table never holds the id itself and nobody without the key can test ids."""
    return hmac.new(settings.secret_key.encode(), f"survey:{kind}:{ident}".encode(),
                    hashlib.sha256).digest()


def lookup_unit(catalog: Catalog, code: str) -> Unit:
    """The unit, or a 422 naming ``unit``."""
    try:
        return catalog.unit(code)
    except UnknownCode:
        raise field_error("unit", f"unknown service unit {code!r}", "unknown_code") from None


async def store_response(pool: asyncpg.Pool, catalog: Catalog, unit: Unit, body: SurveyIn,
                         key: bytes, channel: Channel, now: datetime | None = None) -> Stored:
    """Store one answer sheet and its event in one transaction. It counts unless this
    ``key`` already has a counted answer for the unit in the quarter (in the unit's
    region's time zone) that holds ``now``; then it is stored as a duplicate."""
    now = now or datetime.now(UTC)
    agency = catalog.agency(unit.agency)
    region = catalog.region(agency.region)
    period = periods.current_quarter(now, region.timezone).code
    rid = new_id()
    who = body.respondent or RespondentIn()
    answers = body.answers.as_list()
    async with pool.acquire() as conn, conn.transaction():
        # The partial unique index decides which of two racing answers counts.
        counted = await conn.fetchval(
            "INSERT INTO intake.survey_responses (id, unit, region, agency, period,"
            " respondent_key, answers, age_group, sex, education, occupation, comment,"
            " channel, duplicate, submitted_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, false, $14)"
            " ON CONFLICT (unit, period, respondent_key) WHERE NOT duplicate DO NOTHING"
            " RETURNING true",
            rid, unit.code, region.code, agency.code, period, key, answers, who.age_group,
            who.sex, who.education, who.occupation, body.comment or None, channel, now)
        if not counted:
            await conn.execute(
                "INSERT INTO intake.survey_responses (id, unit, region, agency, period,"
                " respondent_key, answers, age_group, sex, education, occupation, comment,"
                " channel, duplicate, submitted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true, $14)",
                rid, unit.code, region.code, agency.code, period, key, answers,
                who.age_group, who.sex, who.education, who.occupation, body.comment or None,
                channel, now)
        await add_to_outbox(conn, SCHEMA, topics.INTAKE, Envelope.build(
            SurveyResponseSubmitted(
                unit=unit.code, agency=agency.code, region=region.code,
                answers=dict(zip(ELEMENTS, answers, strict=True)), channel=channel,
                duplicate=not counted, submitted_at=now),
            complaint_id=str(rid), producer=PRODUCER, occurred_at=now))
    return Stored(rid, unit.code, period, bool(counted))


async def _check_rate(request: web.Request) -> None:
    await request.app[ikeys.SURVEY_LIMITER].check(request)


def _device_key(request: web.Request) -> bytes:
    device, _ = device_of(request)
    return respondent_key(request.app[keys.SETTINGS], "device", device)


# --- JSON API ------------------------------------------------------------------------

async def post_response(request: web.Request) -> web.Response:
    """``POST /api/v1/surveys/{unit}/responses``: 201 with ``counted``; 422 naming the
    field for a missing element, an answer outside 1-4 or an unknown unit; 429 over
    the rate limit."""
    catalog = request.app[ikeys.CATALOG]
    unit = lookup_unit(catalog, request.match_info["unit"])
    await _check_rate(request)
    data, _ = await read_json_limited(request)
    body = validate(SurveyIn, data)
    stored = await store_response(request.app[keys.POOL], catalog, unit, body,
                                  _device_key(request), "api")
    return json_response(SurveyReceipt(id=str(stored.id), unit=stored.unit,
                                       period=stored.period,
                                       counted=stored.counted).model_dump(), status=201)


def unit_json(catalog: Catalog, unit: Unit) -> dict[str, Any]:
    return {"code": unit.code, "name": unit.name, "agency": unit.agency,
            "region": catalog.agencies[unit.agency].region, "population": unit.population}


async def list_units(request: web.Request) -> web.Response:
    """``GET /api/v1/survey-units?region=``: every unit (of the region); 422 naming
    ``region`` if it is unknown."""
    catalog = request.app[ikeys.CATALOG]
    region = (request.query.get("region") or "").strip()
    if region and region not in catalog.regions:
        raise field_error("region", f"unknown region {region!r}", "unknown_code")
    units = catalog.units_in(region) if region else list(catalog.units.values())
    return json_response([unit_json(catalog, u) for u in units])


# --- pages ---------------------------------------------------------------------------

FORM_MESSAGE = "Please answer every question (choose one of the four answers)."


def _page_unit(request: web.Request) -> Unit:
    try:
        return request.app[ikeys.CATALOG].unit(request.match_info["unit"])
    except UnknownCode:
        raise web.HTTPNotFound(text="Unit layanan tidak dikenal / unknown service unit",
                               content_type="text/plain") from None


def _form_context(request: web.Request, unit: Unit, values: dict[str, str],
                  errors: dict[str, str], lang: str) -> dict[str, Any]:
    catalog = request.app[ikeys.CATALOG]
    agency = catalog.agencies[unit.agency]
    options = {name: [(value, label(opts, value, lang)) for value in opts]
               for name, opts in RESPONDENT_FIELDS.items()}
    return {"unit": unit, "agency": agency, "region": catalog.regions[agency.region],
            "elements": [(e.code, e.name(lang), e.question(lang), e.answers(lang))
                         for e in QUESTIONNAIRE],
            "options": options, "values": values, "errors": errors,
            "comment_max": COMMENT_MAX}


async def units_page(request: web.Request) -> web.Response:
    """``GET /survey``: every service unit with a link to its survey, by region
    (``?region=``) or agency (``?agency=``): where a citizen whose complaint was
    handled, or who was just served, finds the right survey."""
    page = Page(request)
    catalog = request.app[ikeys.CATALOG]
    region = (request.query.get("region") or "").strip()
    agency = (request.query.get("agency") or "").strip()
    units = list(catalog.units.values())
    if agency in catalog.agencies:
        units = [u for u in units if u.agency == agency]
        region = catalog.agencies[agency].region
    elif region in catalog.regions:
        units = catalog.units_in(region)
    else:
        region = ""
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(catalog.agencies[u.agency].region, []).append(u)
    return page.render("survey_units.html", {
        "groups": [(catalog.regions[code], items) for code, items in groups.items()],
        "regions": list(catalog.regions.values()), "region": region,
        "agency_name": lambda code: catalog.agencies[code].name})


async def survey_page(request: web.Request) -> web.Response:
    page = Page(request)
    unit = _page_unit(request)
    return page.render("survey.html", _form_context(request, unit, {}, {}, page.locale))


async def survey_submit(request: web.Request) -> web.StreamResponse:
    page = Page(request)
    unit = _page_unit(request)
    form = await read_form(request)
    check_csrf(request, form)
    values = {k: str(form.get(k, "")).strip()
              for k in (*ELEMENTS, *RESPONDENT_FIELDS, "comment")}
    data: dict[str, Any] = {
        "answers": {c: int(values[c]) if values[c].isdigit() else values[c] or None
                    for c in ELEMENTS},
        "respondent": {k: values[k] or None for k in RESPONDENT_FIELDS},
        "comment": values["comment"] or None,
    }
    try:
        await _check_rate(request)
        body = validate(SurveyIn, data)
    except RateLimited as e:
        errors = {"form": page.gettext("Too many answers from this device. Please try again "
                                       "in a minute.")}
        response = page.render("survey.html", _form_context(request, unit, values, errors,
                                                            page.locale), status=429)
        response.headers.update(e.headers)
        return response
    except ApiError as e:
        errors = {}
        for f in e.details.get("fields", []) if isinstance(e.details, dict) else []:
            name = str(f.get("field", "")).split(".")[-1]
            errors[name] = page.gettext("Please check this answer.")
        errors["form"] = page.gettext(FORM_MESSAGE)
        return page.render("survey.html", _form_context(request, unit, values, errors,
                                                        page.locale), status=422)
    stored = await store_response(request.app[keys.POOL], request.app[ikeys.CATALOG], unit,
                                  body, _device_key(request), "web")
    response = see_other(f"/survey/{unit.code}/thanks?counted={int(stored.counted)}")
    page.finish(response)
    return response


async def thanks_page(request: web.Request) -> web.Response:
    page = Page(request)
    unit = _page_unit(request)
    return page.render("survey_thanks.html", {
        "unit": unit, "counted": request.query.get("counted") != "0"})


def survey_url(settings: Settings, unit: Unit) -> str:
    return f"{settings.intake_url.rstrip('/')}/survey/{unit.code}"


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as inline SVG (segno: pure Python, no image library),
    error correction "M" so a scuffed poster still scans."""
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=8, border=2, xmldecl=False,
                                    svgns=True, title=url)
    return buffer.getvalue().decode()


async def poster_page(request: web.Request) -> web.Response:
    """A printable A4 poster for the counter: the unit's name and the QR code of its
    survey page (and the address written out, for phones without a QR reader)."""
    page = Page(request)
    unit = _page_unit(request)
    catalog = request.app[ikeys.CATALOG]
    url = survey_url(request.app[keys.SETTINGS], unit)
    return page.render("survey_poster.html", {
        "unit": unit, "agency": catalog.agencies[unit.agency], "url": url,
        "qr": qr_svg(url)})


async def qr_image(request: web.Request) -> web.Response:
    unit = _page_unit(request)
    return web.Response(text=qr_svg(survey_url(request.app[keys.SETTINGS], unit)),
                        content_type="image/svg+xml")


def setup(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    r = app.router
    api.add(r, "POST", "/api/v1/surveys/{unit}/responses", post_response,
            summary="Answer the satisfaction survey (SKM) of a service unit: answers "
                    "U1..U9 (1-4), optional respondent data and comment",
            body=SurveyIn, responses={201: SurveyReceipt}, tags=["survey"],
            errors=(400, 413, 415, 422, 429))
    api.add(r, "GET", "/api/v1/survey-units", list_units,
            summary="Service units with a satisfaction survey (of a region)",
            parameters=[{"name": "region", "in": "query", "required": False,
                         "schema": {"type": "string"}}],
            responses={200: {"type": "array", "items": UnitOut.model_json_schema()}},
            tags=["survey"], errors=(422,))
    r.add_get("/survey", units_page)
    r.add_get("/survey/{unit}", survey_page)
    r.add_post("/survey/{unit}", survey_submit)
    r.add_get("/survey/{unit}/thanks", thanks_page)
    r.add_get("/survey/{unit}/poster", poster_page)
    r.add_get("/survey/{unit}/qr.svg", qr_image)
