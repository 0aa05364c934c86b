"""Photos: checked by their content, decoded and re-encoded with Pillow so that no
metadata survives (EXIF with GPS and device, XMP, ICC profiles, comments, text
chunks), capped in size, pixels and number, stored in the intake schema, and served
through expiring signed links: to staff (any photo), and on a public report's page
(only the photos sent with the report itself, only while the report is public).

Every path that stores a photo (JSON base64, multipart API, the web form and its
add-information form, the Telegram bot) goes through ``PhotoCleaner.clean``; the
bytes a citizen sent are never stored as they came.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Sequence

import asyncpg
from aiohttp import web

from awasi import media, signing
from awasi.web import keys
from awasi.web.errors import NotFound
from awasi.web.signed_links import signed_uuid
from services.intake.errors import field_error

MAX_PHOTOS = 3
# Per photo. A phone photo re-encoded by the browser or the camera app is well below.
MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PIXELS = media.MAX_PIXELS
LINK_MAX_AGE_S = 3600
PURPOSE = "photo"
# Links on public pages: another purpose, so a public link is never a staff link,
# and the photo is checked again when served (see ``serve_public_photo``).
PUBLIC_PURPOSE = "public-photo"
# The re-encoding itself is ``awasi.media`` (the router's image attachments use it
# too); the error codes start with ``photo_``.
RULES = media.ImageRules(noun="photo", max_bytes=MAX_PHOTO_BYTES)

# A checked photo: ``content_type`` is what the bytes are, not what was claimed.
Photo = media.CleanImage
sniff = media.sniff
configure_pillow = media.configure_pillow


def check_photo(data: bytes, field: str) -> Photo:
    """A ``Photo`` for these bytes (not yet re-encoded); raises a 422 naming ``field``
    if empty, too large or not a JPEG, PNG or WebP image. Cheap: no decoding."""
    return media.check(data, field, RULES)


def reencode(data: bytes, field: str) -> Photo:
    """``awasi.media.reencode`` with the photo rules: pixels only, no metadata;
    422s ``photo_empty``, ``photo_too_large``, ``photo_type``,
    ``photo_too_many_pixels``, ``photo_unreadable``. CPU-bound."""
    return media.reencode(data, field, RULES)


class PhotoCleaner(media.ImageCleaner):
    """Re-encodes photos on a small thread pool, off the event loop
    (``awasi.media.ImageCleaner`` with the photo rules)."""

    def __init__(self, workers: int = 2) -> None:
        super().__init__(RULES, workers, name="photo")

    async def clean_all(self, items: Sequence[tuple[bytes, str]]) -> list[Photo]:
        """Each ``(data, field)`` re-encoded, in order; the first refusal is raised."""
        results = await asyncio.gather(*(self.clean(d, f) for d, f in items),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, Photo)]


def decode_base64(data: str, field: str) -> bytes:
    """The bytes of base64 text (standard alphabet, padding optional); 422 naming
    ``field`` if it is not base64."""
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise field_error(field, "not valid base64", "photo_base64") from e


def check_count(n: int, field: str = "photos") -> None:
    if n > MAX_PHOTOS:
        raise field_error(field, f"at most {MAX_PHOTOS} photos", "too_many_photos")


def photo_link(secret_key: str, base_url: str, photo_id: str) -> str:
    """An expiring link to a photo for staff (valid ``LINK_MAX_AGE_S`` seconds)."""
    token = signing.sign(secret_key, PURPOSE, photo_id)
    return f"{base_url.rstrip('/')}/photos/{photo_id}?token={token}"


async def serve_photo(request: web.Request) -> web.Response:
    """``GET /photos/{photo_id}?token=``: the photo, if the token was signed for this
    photo id within the last hour; 403 otherwise, 404 if there is no such photo."""
    pid = _signed_photo_id(request, PURPOSE)
    row = await request.app[keys.POOL].fetchrow(
        "SELECT content_type, data FROM intake.photos WHERE id = $1", pid)
    return _photo_response(row, "private")


def _signed_photo_id(request: web.Request, purpose: str) -> uuid.UUID:
    return signed_uuid(request, purpose, "photo_id", LINK_MAX_AGE_S,
                       invalid="The link is invalid or has expired", not_found="No such photo")


def _photo_response(row: asyncpg.Record | None, cache: str) -> web.Response:
    """The photo's bytes as its own type, never sniffed or run as a page; 404 for none."""
    if row is None:
        raise NotFound("No such photo")
    return web.Response(
        body=bytes(row["data"]), content_type=row["content_type"],
        headers={"Cache-Control": f"{cache}, max-age=600", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'"},
    )


# --- public links ----------------------------------------------------------------------

async def public_photo_ids(pool: asyncpg.Pool, complaint_id: uuid.UUID) -> list[str]:
    """The photos a public report shows: those sent with the report itself (never a
    follow-up's), in the order they were stored. The caller has checked that the
    report is public."""
    rows = await pool.fetch("SELECT id FROM intake.photos WHERE complaint_id = $1"
                            " AND at_filing ORDER BY created_at, id", complaint_id)
    return [str(r["id"]) for r in rows]


def public_photo_link(secret_key: str, tracking_code: str, photo_id: str) -> str:
    """A same-origin link to a public report's photo, valid ``LINK_MAX_AGE_S``
    seconds (the page makes fresh ones on every view)."""
    token = signing.sign(secret_key, PUBLIC_PURPOSE, photo_id)
    return f"/reports/{tracking_code}/photos/{photo_id}?token={token}"


async def serve_public_photo(request: web.Request) -> web.Response:
    """``GET /reports/{tracking_code}/photos/{photo_id}?token=``: the photo, if the
    token was signed for it within the last hour AND, now, the report is public and
    the photo was sent with it. 403 for a bad or expired token; 404 alike for an
    unknown photo, a private report, or a follow-up's photo."""
    pid = _signed_photo_id(request, PUBLIC_PURPOSE)
    # Checked at every request, not only when the link was made: the allow-list of a
    # public surface is enforced where the bytes leave.
    row = await request.app[keys.POOL].fetchrow(
        "SELECT p.content_type, p.data FROM intake.photos p"
        " JOIN intake.complaints c ON c.id = p.complaint_id"
        " WHERE p.id = $1 AND p.at_filing AND c.visibility = 'public'"
        " AND c.tracking_code = $2", pid, request.match_info["tracking_code"])
    return _photo_response(row, "public")
