"""Attachments from the agency to the citizen: a PDF or an image as an answer.

- Who: staff and heads of the ticket's agency (another agency's ticket answers 404,
  like every ticket endpoint), in the statuses where the agency may answer the
  citizen (the lifecycle's ``respond``: an attachment is an answer).
- What: a PDF that passes ``awasi.pdfcheck`` (magic bytes, parsed by pypdf, not
  encrypted, no scripts, actions or embedded files), or a JPEG, PNG or WebP image,
  re-encoded by ``awasi.media`` (pixels only, no metadata). At most
  ``AWASI_ATTACHMENT_MAX_BYTES``. Anything else is a 422 and writes nothing.
- Stored in ``router.attachments`` in the transaction that writes the ticket's
  timeline entry and the ``ticket.attachment_added`` event (id, kind, type, size and
  sanitised file name; never the bytes), so the citizen is told exactly of what is
  stored.
- Served to the citizen by the router at ``GET /attachments/{id}?token=``, a link
  intake makes (``awasi.web.signed_links.attachment_link``) on the status page and
  API with the conversation unlocked; to staff of the agency through the API.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from awasi import lifecycle, media, pdfcheck
from awasi.events.payloads import TicketAttachmentAdded
from awasi.identity import User, require_user
from awasi.web import keys
from awasi.web.body import read_form
from awasi.web.errors import NotFound, UnsupportedMediaType, ValidationFailed
from awasi.web.responses import json_response
from awasi.web.signed_links import ATTACHMENT_LINK_MAX_AGE_S, ATTACHMENT_PURPOSE, signed_uuid
from services.router import api, db, desk, domain
from services.router.errors import InvalidTransition
from services.router.keys import ATTACHMENTS, CLOCK

FIELD = "file"
# Room for the multipart framing and the form's other fields around the file.
FORM_OVERHEAD = 64 * 1024
# An attachment is an answer to the citizen: allowed where the lifecycle lets the
# agency respond (awasi/lifecycle.py), never restated here.
AS_ACTION = "respond"
_EXTENSIONS = {"application/pdf": (".pdf",), "image/jpeg": (".jpg", ".jpeg"),
               "image/png": (".png",), "image/webp": (".webp",)}
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True, slots=True)
class Checked:
    """A file that passed every check; ``data`` is what will be stored and served."""

    kind: str  # "pdf" | "image"
    content_type: str
    data: bytes


def refuse(code: str, message: str) -> ValidationFailed:
    """The 422 for a refused file, naming the ``file`` field, with ``code`` a client
    (and the desk's friendly text) can act on."""
    return ValidationFailed(f"Invalid value for '{FIELD}': {message}", code=code,
                            details={"fields": [{"field": FIELD, "message": message,
                                                 "type": code}]})


class AttachmentChecker:
    """Checks files on a small thread pool (parsing a PDF and re-encoding an image
    are CPU-bound), so the event loop never waits on them."""

    def __init__(self, max_bytes: int, workers: int = 2) -> None:
        self.max_bytes = max_bytes
        self._images = media.ImageCleaner(media.ImageRules("attachment", max_bytes),
                                          workers, name="attachment-image")
        self._pdfs = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attachment-pdf")

    async def check(self, data: bytes) -> Checked:
        """The file as it will be stored; raises ``refuse``'s 422: ``attachment_empty``,
        ``attachment_too_large``, ``attachment_type`` (neither a PDF nor a JPEG, PNG or
        WebP image), ``pdf_unreadable``, ``pdf_encrypted``, ``pdf_active``,
        ``pdf_too_complex``, ``attachment_unreadable``, ``attachment_too_many_pixels``."""
        if not data:
            raise refuse("attachment_empty", "the file is empty")
        if len(data) > self.max_bytes:
            raise refuse("attachment_too_large",
                         f"a file may be at most {self.max_bytes} bytes")
        if pdfcheck.is_pdf(data):
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._pdfs, pdfcheck.check, data)
            except pdfcheck.PdfRefused as e:
                raise refuse(e.code, str(e)) from e
            return Checked("pdf", "application/pdf", data)
        if media.sniff(data) is None:
            raise refuse("attachment_type", "only PDF, JPEG, PNG or WebP files are accepted")
        try:
            image = await self._images.clean(data, FIELD)
        except ValidationFailed as e:
            fields = e.details.get("fields") or [{}]
            raise refuse(fields[0].get("type", "attachment_unreadable"),
                         fields[0].get("message", e.message)) from e
        return Checked("image", image.content_type, image.data)

    def close(self) -> None:
        self._images.close()
        self._pdfs.shutdown(wait=True, cancel_futures=True)


def safe_file_name(raw: str | None, content_type: str) -> str:
    """A file name that is safe in a header, a page and on the topic: the last path
    component (after percent-decoding), accents folded to ASCII, anything but
    letters, digits, dot, dash, underscore and space replaced, at most 100
    characters, and an extension that
    matches what the file is (``surat.exe`` as a PDF becomes ``surat.exe.pdf``).
    ``lampiran`` ("attachment") when nothing is left."""
    # Clients percent-encode what a quoted header value cannot hold (aiohttp all of
    # it, browsers quotes and line breaks): decoded first, then cleaned.
    name = urllib.parse.unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip(" ._-")
    extensions = _EXTENSIONS[content_type]
    stem = name
    if name.lower().endswith(extensions):
        stem = name[:name.rfind(".")]
    stem = stem.strip(" ._-")[:90] or "lampiran"
    return stem + extensions[0]


def attachment_json(row: asyncpg.Record) -> dict[str, Any]:
    """An attachment's metadata (never its bytes, never who sent it to the citizen)."""
    return {"id": str(row["id"]), "kind": row["kind"], "content_type": row["content_type"],
            "file_name": row["file_name"], "size": row["size"], "author": row["author"],
            "created_at": row["created_at"].isoformat()}


async def attach(conn: asyncpg.Connection, user: User, ticket_id: str, file: Checked,
                 file_name: str | None, now: datetime) -> asyncpg.Record:
    """Store ``file`` on ``user``'s agency's ticket and tell the citizen: the row,
    the timeline entry and the event commit together. Raises ``TicketNotFound``
    (another agency's or no ticket) or ``InvalidTransition`` (the agency may not
    answer in this status). Returns the attachment's row."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    if t["status"] not in domain.ALLOWED[AS_ACTION]:
        raise InvalidTransition("attach a file to", t["status"])
    state = domain.state_of(t)
    step = lifecycle.apply(state, TicketAttachmentAdded.EVENT_TYPE, lifecycle.next_seq(state))
    ticket = await db.update(conn, t, now, **domain.state_columns(step.state))
    name = safe_file_name(file_name, file.content_type)
    row = await conn.fetchrow(
        "INSERT INTO router.attachments (id, ticket_id, agency, author, kind, content_type,"
        " file_name, size, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " RETURNING id, kind, content_type, file_name, size, author, created_at",
        uuid.uuid4(), t["id"], t["agency"], user.username, file.kind, file.content_type,
        name, len(file.data), file.data, now)
    assert row is not None
    await domain.emit(conn, ticket, TicketAttachmentAdded(
        agency=ticket["agency"], attachment_id=str(row["id"]), kind=file.kind,  # type: ignore[arg-type]
        content_type=file.content_type, size=len(file.data),  # type: ignore[arg-type]
        file_name=name), now, user.username)
    return row


# --- receiving --------------------------------------------------------------------------

async def _caller(request: web.Request) -> tuple[web.Request, User]:
    """The request with room for the file (the app's body limit is for JSON; this
    route takes a file), and the caller (staff or head; the CSRF token checked)."""
    settings = request.app[keys.SETTINGS]
    request = request.clone(client_max_size=settings.attachment_max_bytes + FORM_OVERHEAD)
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("Send the file as multipart/form-data, in the 'file' part")
    return request, await require_user(request, api.AGENCY_ROLES)


async def _receive(request: web.Request, user: User) -> tuple[Checked, str | None]:
    """The checked file and the name it was sent with. The agency and the status are
    checked before the file is parsed, so another agency's ticket costs no parsing
    and answers 404 whatever the file."""
    t = await db.get_for_agency(request.app[keys.POOL], request.match_info["id"], user.agency)
    if t["status"] not in domain.ALLOWED[AS_ACTION]:
        raise InvalidTransition("attach a file to", t["status"])
    form = await read_form(request)
    part = form.get(FIELD)
    if not isinstance(part, web.FileField):
        raise refuse("attachment_missing", "send the file in the 'file' part")
    data = part.file.read()
    return await request.app[ATTACHMENTS].check(data), part.filename


async def post_attachment(request: web.Request) -> web.Response:
    request, user = await _caller(request)
    checked, name = await _receive(request, user)
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        row = await attach(conn, user, request.match_info["id"], checked, name,
                           request.app[CLOCK]())
    return json_response(attachment_json(row), status=201)


async def get_attachments(request: web.Request) -> web.Response:
    user = await require_user(request, api.AGENCY_ROLES)
    pool = request.app[keys.POOL]
    t = await db.get_for_agency(pool, request.match_info["id"], user.agency)
    rows = await db.attachments(pool, t["id"])
    return json_response({"attachments": [attachment_json(r) for r in rows],
                          "count": len(rows)})


# --- serving ----------------------------------------------------------------------------

def file_response(row: asyncpg.Record | None) -> web.Response:
    """The bytes as their stored type, always a download (never shown inline, so a
    PDF viewer or the browser never runs it as a page of this origin), never sniffed."""
    if row is None:
        raise NotFound("No such attachment")
    return web.Response(body=bytes(row["data"]), headers={
        "Content-Type": row["content_type"],
        # The name is already restricted to safe characters (``safe_file_name``).
        "Content-Disposition": f'attachment; filename="{row["file_name"]}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })


async def serve_citizen(request: web.Request) -> web.Response:
    """``GET /attachments/{attachment_id}?token=``: the file, if the token was signed
    for this attachment id (purpose ``citizen-attachment``) within the last hour.
    403 for a bad, expired or another attachment's token; 404 for none such."""
    aid = signed_uuid(request, ATTACHMENT_PURPOSE, "attachment_id", ATTACHMENT_LINK_MAX_AGE_S,
                      invalid="The link is invalid or has expired",
                      not_found="No such attachment")
    row = await request.app[keys.POOL].fetchrow(
        "SELECT content_type, file_name, data FROM router.attachments WHERE id = $1", aid)
    return file_response(row)


async def serve_staff(request: web.Request) -> web.Response:
    """``GET /api/v1/tickets/{id}/attachments/{attachment_id}``: the file, for staff of
    the ticket's agency (404 alike for another agency's ticket or attachment)."""
    user = await require_user(request, api.AGENCY_ROLES)
    pool = request.app[keys.POOL]
    t = await db.get_for_agency(pool, request.match_info["id"], user.agency)
    try:
        aid = uuid.UUID(request.match_info["attachment_id"])
    except ValueError as e:
        raise NotFound("No such attachment") from e
    row = await pool.fetchrow(
        "SELECT content_type, file_name, data FROM router.attachments"
        " WHERE id = $1 AND ticket_id = $2", aid, t["id"])
    return file_response(row)


# --- the desk's form ------------------------------------------------------------------

@desk.page
async def desk_submit(request: web.Request) -> web.StreamResponse:
    """``POST /tickets/{id}/attachments`` from the ticket page: back to the ticket, or
    the ticket again with the reason in the page's language."""
    request, user = await _caller(request)
    try:
        checked, name = await _receive(request, user)
        async with request.app[keys.POOL].acquire() as conn, conn.transaction():
            await attach(conn, user, request.match_info["id"], checked, name,
                         request.app[CLOCK]())
    except (ValidationFailed, InvalidTransition) as e:
        row = await db.get_for_agency(request.app[keys.POOL], request.match_info["id"],
                                      user.agency)
        return await desk.render_ticket(request, user, row, error=e)
    raise web.HTTPSeeOther(f"/tickets/{request.match_info['id']}")


def setup(app: web.Application, max_bytes: int) -> None:
    """The routes, and the checker's threads (opened and closed with the app)."""

    async def checker(app: web.Application) -> Any:
        media.configure_pillow()  # Pillow's own bomb limit too, as at intake
        app[ATTACHMENTS] = AttachmentChecker(max_bytes)
        try:
            yield
        finally:
            app[ATTACHMENTS].close()

    app.cleanup_ctx.append(checker)
    spec, r = app[keys.OPENAPI], app.router
    spec.add(r, "POST", "/api/v1/tickets/{id}/attachments", post_attachment, tags=["tickets"],
             secured=True,
             summary="Send the citizen a file (multipart 'file': a PDF, or a JPEG, PNG or"
                     " WebP image, re-encoded), where the agency may respond",
             body={"type": "object", "required": [FIELD],
                   "properties": {FIELD: {"type": "string", "format": "binary"}}},
             body_content_type="multipart/form-data",
             responses={201: {"type": "object"}}, errors=(400, 404, 409, 413, 415, 422))
    spec.add(r, "GET", "/api/v1/tickets/{id}/attachments", get_attachments, tags=["tickets"],
             secured=True, summary="A ticket's attachments to the citizen (metadata)",
             responses={200: {"type": "object"}}, errors=(404,))
    spec.add(r, "GET", "/api/v1/tickets/{id}/attachments/{attachment_id}", serve_staff,
             tags=["tickets"], secured=True, summary="One attachment's file (the agency)",
             responses={200: None}, errors=(404,))
    r.add_get("/attachments/{attachment_id}", serve_citizen)
    r.add_post("/tickets/{id}/attachments", desk_submit)
