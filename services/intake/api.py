"""The JSON API: submit, follow, add information, rate or dispute, withdraw; the
catalog's regions and categories; the router desk's reporter lookup."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, Field

from awasi import i18n
from awasi.web import keys
from awasi.web.body import json_object, read_json_object, validate
from awasi.web.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
)
from awasi.web.responses import json_response
from awasi.web.signed_links import signed_uuid
from services.intake import db, domain, photos, visibility
from services.intake import keys as ikeys
from services.intake.errors import field_error

REPORTER_TOKEN_MAX_AGE_S = 120
# The follow-up secret that opens the conversation on GET (a header, not the query
# string: query strings end up in access logs and browser history).
SECRET_HEADER = "X-Awasi-Secret"
IDEMPOTENCY_KEY_MAX = 200


# --- response models (for the OpenAPI document) ----------------------------------------

class RegionOut(BaseModel):
    code: str
    name: str
    timezone: str


class CategoryOut(BaseModel):
    code: str
    name_id: str
    name_en: str
    group: str


class AgencyRef(BaseModel):
    code: str
    name: str
    short_name: str


class NamedRef(BaseModel):
    code: str
    name: str


class CategoryRef(BaseModel):
    code: str
    name_id: str
    name_en: str


class DeadlinesOut(BaseModel):
    triage_by: str | None
    acknowledge_by: str | None
    resolve_by: str | None
    dispute_until: str | None


class OverdueOut(BaseModel):
    triage: bool
    acknowledge: bool
    resolve: bool


class FeedbackOut(BaseModel):
    rating: int | None
    dispute: bool
    given_at: str | None


class TimelineEntry(BaseModel):
    model_config = {"extra": "allow"}
    at: str
    kind: str


class StatusOut(BaseModel):
    """The tracking code alone answers the fields up to ``can_dispute``
    (``access: status``); with the follow-up secret in ``X-Awasi-Secret`` the
    conversation fields too (``access: conversation``)."""

    tracking_code: str
    access: Literal["status", "conversation"]
    status: str
    visibility: Literal["public", "private"]
    region: NamedRef
    agency: AgencyRef | None
    deadlines: DeadlinesOut
    overdue: OverdueOut
    paused: bool = Field(default=False, description="The agency's clock is stopped: it "
                                                    "waits for the citizen's answer")
    can_give_feedback: bool
    can_dispute: bool
    category: CategoryRef | None = None
    title: str | None = None
    description: str | None = None
    privacy: str | None = None
    submitted_at: str | None = None
    updated_at: str | None = None
    feedback: FeedbackOut | None = None
    timeline: list[TimelineEntry] | None = None


class ActionOut(BaseModel):
    model_config = {"extra": "allow"}
    tracking_code: str
    status: str


class ReporterOut(BaseModel):
    name: str | None
    phone: str | None
    email: str | None


# --- bodies ------------------------------------------------------------------------------

async def read_json_limited(request: web.Request) -> tuple[Any, bytes]:
    """The JSON object and its raw bytes, capped at ``max_request_bytes`` (the app's
    own cap is the larger upload size, for multipart photos)."""
    limit = request.app[keys.SETTINGS].max_request_bytes
    return await read_json_object(request, max_bytes=limit)


async def read_multipart_complaint(request: web.Request) -> tuple[Any, bytes, list[photos.Photo]]:
    """``multipart/form-data`` with a ``complaint`` part (the JSON object) and up to
    three ``photo`` file parts. The ``complaint`` part gets the checks of a JSON body
    (``max_request_bytes``, NUL characters, an object); the photos come back
    re-encoded without metadata (a 422 naming ``photos.N`` if one does not decode)."""
    settings = request.app[keys.SETTINGS]
    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("Request body is too large", details={"max_bytes": limit})
    try:
        reader = await request.multipart()
    except ValueError as e:
        raise BadRequest(f"Malformed multipart body: {e}", code="bad_form") from e
    total = 0

    async def read_part(part: BodyPartReader, part_limit: int) -> bytes:
        # multipart() streams, so aiohttp's client_max_size does not apply: count here.
        nonlocal total
        chunks, size = [], 0
        while chunk := await part.read_chunk():
            total += len(chunk)
            size += len(chunk)
            if total > limit:
                raise PayloadTooLarge("Request body is too large", details={"max_bytes": limit})
            if size > part_limit:
                raise PayloadTooLarge(f"The '{part.name}' part is too large",
                                      details={"max_bytes": part_limit})
            chunks.append(chunk)
        return b"".join(chunks)

    data: Any = None
    digest = hashlib.sha256()
    found: list[tuple[bytes, str]] = []
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            is_complaint = part.name == "complaint"
            raw = await read_part(part, settings.max_request_bytes if is_complaint else limit)
            digest.update(part.name.encode() if part.name else b"")
            digest.update(hashlib.sha256(raw).digest())
            if is_complaint:
                data = json_object(raw, part="complaint", max_bytes=settings.max_request_bytes)
            elif part.name in ("photo", "photos"):
                if raw:
                    photos.check_count(len(found) + 1)
                    field = f"photos.{len(found)}"
                    photos.check_photo(raw, field)
                    found.append((raw, field))
    except ValueError as e:
        raise BadRequest(f"Malformed multipart body: {e}", code="bad_form") from e
    if not isinstance(data, dict):
        raise field_error("complaint", "send the complaint as a JSON object in the "
                          "'complaint' part", "missing")
    return data, digest.digest(), await request.app[ikeys.PHOTOS].clean_all(found)


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise BadRequest(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters",
                         code="bad_idempotency_key")
    return key


async def _clean_base64(app: web.Application, texts: list[str]) -> list[photos.Photo]:
    """JSON's base64 photos, decoded and re-encoded without metadata (422 naming
    ``photos.N``)."""
    items = [(photos.decode_base64(t, f"photos.{i}"), f"photos.{i}") for i, t in enumerate(texts)]
    return await app[ikeys.PHOTOS].clean_all(items)


async def submit(app: web.Application, cmd: domain.SubmitCommand) -> domain.Receipt:
    """Store a command: group-committed when it has no Idempotency-Key, else through
    ``domain.submit_complaint`` (which claims the key in the same transaction)."""
    if cmd.idempotency_key is not None:
        receipt = await domain.submit_complaint(app[keys.POOL], app[ikeys.CATALOG],
                                                app[keys.SETTINGS], cmd)
    else:
        prepared = domain.prepare(app[ikeys.CATALOG], app[keys.SETTINGS], cmd)
        await app[ikeys.BATCHER].submit(prepared)
        domain.received(prepared)
        receipt = prepared.receipt()
    app[ikeys.SUBMITTED].labels(cmd.channel).inc()
    return receipt


# --- handlers ----------------------------------------------------------------------------

async def create_complaint(request: web.Request) -> web.Response:
    """``POST /api/v1/complaints``: 201 with the receipt (tracking code, secret)."""
    await request.app[ikeys.LIMITER].check(request)
    key = _idempotency_key(request)
    if request.content_type == "multipart/form-data":
        data, request_hash, uploaded = await read_multipart_complaint(request)
        if data.get("photos"):
            raise field_error("photos", "send photos either as parts or in JSON, not both")
    else:
        data, raw = await read_json_limited(request)
        request_hash = hashlib.sha256(raw).digest()
        uploaded = []
    body = validate(domain.ComplaintIn, data)
    photos.check_count(len(uploaded) + len(body.photos))
    uploaded += await _clean_base64(request.app, [ph.data for ph in body.photos])
    cmd = domain.SubmitCommand(
        region=body.region, category=body.category, description=body.description,
        title=body.title, location=body.location, reporter=body.reporter,
        privacy=body.privacy, visibility=body.visibility, channel="api", photos=uploaded,
        idempotency_key=key, request_hash=request_hash if key else None,
        locale=i18n.from_accept_language(request.headers.get("Accept-Language")) or i18n.DEFAULT,
    )
    receipt = await submit(request.app, cmd)
    return json_response(receipt.model_dump(mode="json"), status=201,
                             headers={"Location": receipt.status_url})


async def complaint_status(request: web.Request) -> web.Response:
    """``GET /api/v1/complaints/{tracking_code}``: status, agency and deadlines; with
    the follow-up secret in ``X-Awasi-Secret`` also the conversation (403
    ``wrong_secret`` if that secret is wrong)."""
    secret = request.headers.get(SECRET_HEADER, "").strip() or None
    settings = request.app[keys.SETTINGS]
    status = await domain.complaint_status(
        request.app[keys.POOL], request.app[ikeys.CATALOG], request.match_info["tracking_code"],
        secret=secret,
        attachment_link=visibility.attachment_links(settings.secret_key, settings.router_url))
    return json_response(status, headers={"Cache-Control": "no-store"})


async def complaint_feedback(request: web.Request) -> web.Response:
    """``POST /api/v1/complaints/{tracking_code}/feedback``: rate 1-5, comment, dispute."""
    data, _ = await read_json_limited(request)
    body = validate(domain.FeedbackIn, data)
    result = await domain.give_feedback(request.app[keys.POOL], request.app[ikeys.CATALOG],
                                        request.match_info["tracking_code"], body)
    return json_response(result)


async def complaint_info(request: web.Request) -> web.Response:
    """``POST /api/v1/complaints/{tracking_code}/info``: the citizen adds information."""
    data, _ = await read_json_limited(request)
    body = validate(domain.InfoIn, data)
    added = await _clean_base64(request.app, [ph.data for ph in body.photos])
    result = await domain.add_info(request.app[keys.POOL], request.match_info["tracking_code"],
                                   body, added)
    return json_response(result)


async def complaint_withdraw(request: web.Request) -> web.Response:
    """``POST /api/v1/complaints/{tracking_code}/withdraw``."""
    data, _ = await read_json_limited(request)
    body = validate(domain.WithdrawIn, data)
    result = await domain.withdraw(request.app[keys.POOL], request.match_info["tracking_code"],
                                   body)
    return json_response(result)


async def list_regions(request: web.Request) -> web.Response:
    catalog = request.app[ikeys.CATALOG]
    return json_response([
        {"code": r.code, "name": r.name, "timezone": r.timezone}
        for r in catalog.regions.values()])


async def list_categories(request: web.Request) -> web.Response:
    """``GET /api/v1/categories?region=``: the categories offered in a region (all
    without ``region``); 422 naming ``region`` if it is unknown."""
    catalog = request.app[ikeys.CATALOG]
    region = request.query.get("region")
    if region is None or region == "":
        cats = list(catalog.categories.values())
    elif region not in catalog.regions:
        raise field_error("region", f"unknown region {region!r}", "unknown_code")
    else:
        cats = catalog.categories_for(region)
    return json_response([{"code": c.code, "name_id": c.name_id, "name_en": c.name_en,
                               "group": c.group} for c in cats])


async def reporter_contact(request: web.Request) -> web.Response:
    """``GET /internal/v1/complaints/{complaint_id}/reporter?token=``: a named
    reporter's contact for the router's desk. 403 for a bad or expired token; 404 for
    every other case (unknown, confidential or anonymous: the answer never says which)."""
    cid = signed_uuid(request, "reporter", "complaint_id", REPORTER_TOKEN_MAX_AGE_S,
                      invalid="Invalid or expired token", not_found="No contact to give")
    row = await db.reporter(request.app[keys.POOL], cid)
    if row is None or row["privacy"] != "named":
        raise NotFound("No contact to give")
    return json_response({"name": row["name"], "phone": row["phone"], "email": row["email"]},
                             headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    r = app.router
    api.add(r, "POST", "/api/v1/complaints", create_complaint,
            summary="Submit a complaint (JSON; or multipart with a 'complaint' JSON part and "
                    "'photo' file parts). Optional header Idempotency-Key.",
            body=domain.ComplaintIn, responses={201: domain.Receipt}, tags=["complaints"],
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX}}],
            errors=(400, 409, 413, 415, 422, 429))
    api.add(r, "GET", "/api/v1/complaints/{tracking_code}", complaint_status,
            summary="Status, agency and deadlines; the conversation too with the "
                    "follow-up secret in X-Awasi-Secret",
            parameters=[{"name": SECRET_HEADER, "in": "header", "required": False,
                         "schema": {"type": "string", "maxLength": 64}}],
            responses={200: StatusOut}, tags=["complaints"], errors=(403, 404))
    api.add(r, "POST", "/api/v1/complaints/{tracking_code}/feedback", complaint_feedback,
            summary="Rate (1-5) and/or dispute a resolved complaint", body=domain.FeedbackIn,
            responses={200: ActionOut}, tags=["complaints"],
            errors=(400, 403, 404, 409, 413, 415, 422))
    api.add(r, "POST", "/api/v1/complaints/{tracking_code}/info", complaint_info,
            summary="Add information (e.g. answer the agency's question)", body=domain.InfoIn,
            responses={200: ActionOut}, tags=["complaints"],
            errors=(400, 403, 404, 409, 413, 415, 422))
    api.add(r, "POST", "/api/v1/complaints/{tracking_code}/withdraw", complaint_withdraw,
            summary="Withdraw an open complaint", body=domain.WithdrawIn,
            responses={200: ActionOut}, tags=["complaints"],
            errors=(400, 403, 404, 409, 413, 415, 422))
    api.add(r, "GET", "/api/v1/regions", list_regions, summary="Regions",
            responses={200: {"type": "array", "items": RegionOut.model_json_schema()}},
            tags=["catalog"], errors=())
    api.add(r, "GET", "/api/v1/categories", list_categories,
            summary="Complaint categories offered in a region",
            parameters=[{"name": "region", "in": "query", "required": False,
                         "schema": {"type": "string"}}],
            responses={200: {"type": "array", "items": CategoryOut.model_json_schema()}},
            tags=["catalog"], errors=(422,))
    api.add(r, "GET", "/internal/v1/complaints/{complaint_id}/reporter", reporter_contact,
            summary="A named reporter's contact, for the router's desk (signed token, 120 s)",
            parameters=[{"name": "token", "in": "query", "required": True,
                         "schema": {"type": "string"}}],
            responses={200: ReporterOut}, tags=["internal"], errors=(403, 404))
    api.add(r, "GET", "/photos/{photo_id}", photos.serve_photo,
            summary="A photo, through an expiring signed link (staff)",
            parameters=[{"name": "token", "in": "query", "required": True,
                         "schema": {"type": "string"}}],
            responses={200: None}, tags=["photos"], errors=(403, 404))
