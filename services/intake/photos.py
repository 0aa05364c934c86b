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
import io
import uuid
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from PIL import Image, ImageOps

from awasi import signing
from awasi.web import keys
from awasi.web.errors import NotFound
from awasi.web.signed_links import signed_uuid
from services.intake.errors import field_error

MAX_PHOTOS = 3
# Per photo. A phone photo re-encoded by the browser or the camera app is well below.
MAX_PHOTO_BYTES = 5 * 1024 * 1024
# Decompression-bomb limit: a 5 MB file may claim 50 000 x 50 000 pixels. 40 MP is
# above any phone camera's default output and keeps one decode near 160 MB (RGBA).
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 85
LINK_MAX_AGE_S = 3600
PURPOSE = "photo"
# Links on public pages: another purpose, so a public link is never a staff link,
# and the photo is checked again when served (see ``serve_public_photo``).
PUBLIC_PURPOSE = "public-photo"
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@dataclass(frozen=True, slots=True)
class Photo:
    """A checked photo: ``content_type`` is what the bytes are, not what was claimed.
    After ``PhotoCleaner.clean`` the bytes are a fresh encoding with no metadata."""

    content_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` from its magic bytes (JPEG, PNG, WebP), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(data: bytes, field: str) -> Photo:
    """A ``Photo`` for these bytes (not yet re-encoded); raises a 422 naming ``field``
    if empty, too large or not a JPEG, PNG or WebP image. Cheap: no decoding."""
    if not data:
        raise field_error(field, "the photo is empty", "photo_empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise field_error(field, f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
                          "photo_too_large")
    kind = sniff(data)
    if kind is None:
        raise field_error(field, "only JPEG, PNG or WebP images are accepted", "photo_type")
    return Photo(kind, data)


def configure_pillow() -> None:
    """Set Pillow's decompression-bomb limit to ``MAX_PIXELS`` and make its warning
    (between 1x and 2x the limit) an error, so it refuses rather than decodes.
    Process-wide; called once when the app starts (not at import)."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def reencode(data: bytes, field: str) -> Photo:
    """Decode ``data`` and encode it again in the same format, with the EXIF
    orientation applied and nothing else kept: the result carries pixels only.

    Raises a 422 naming ``field``: ``photo_empty``, ``photo_too_large``,
    ``photo_type`` (see ``check_photo``), ``photo_too_many_pixels`` above
    ``MAX_PIXELS``, ``photo_unreadable`` if it does not decode. CPU-bound: run it
    through ``PhotoCleaner``, not on the event loop."""
    kind = check_photo(data, field).content_type
    try:
        clean = _decode(data, kind)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise field_error(field, f"the image has more than {MAX_PIXELS // 1_000_000} "
                                 "million pixels", "photo_too_many_pixels") from e
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types on bad input
        raise field_error(field, "the image could not be read", "photo_unreadable") from e
    out = io.BytesIO()
    if kind == "image/jpeg":
        clean.save(out, "JPEG", quality=JPEG_QUALITY)
    elif kind == "image/png":
        clean.save(out, "PNG")
    else:
        clean.save(out, "WEBP", quality=JPEG_QUALITY)
    return Photo(kind, out.getvalue())


def _decode(data: bytes, kind: str) -> Image.Image:
    """The upright pixels of ``data`` (see ``_pixels_only``); raises Pillow's errors,
    and ``DecompressionBombError`` above ``MAX_PIXELS``."""
    with Image.open(io.BytesIO(data), formats=[_FORMATS[kind]]) as img:
        # Checked here too, whatever the process's warning filters say.
        if img.width * img.height > MAX_PIXELS:
            raise Image.DecompressionBombError("too many pixels")
        # In place: one decoded copy less in memory (up to MAX_PIXELS x 4 bytes each).
        ImageOps.exif_transpose(img, in_place=True)
        return _pixels_only(img, kind)


def _pixels_only(img: Image.Image, kind: str) -> Image.Image:
    """A new image with ``img``'s pixels in a plain mode and an empty ``info``.

    ``convert`` always returns a new image (a copy when the mode is the same), but it
    copies ``info``, where Pillow keeps EXIF, XMP, ICC, comments and PNG text, and
    some encoders fall back to ``info`` when saving: so it is emptied. Palette images
    become RGB(A) (the palette and its transparency live in ``info`` too)."""
    if img.mode in ("1", "L") and kind != "image/webp":
        mode = "L"
    elif kind != "image/jpeg" and img.has_transparency_data:
        mode = "RGBA"
    else:
        mode = "RGB"
    clean = img.convert(mode)
    clean.info = {}
    return clean


class PhotoCleaner:
    """Re-encodes photos on a small thread pool, off the event loop.

    Threads, not processes: Pillow releases the GIL while it decodes and encodes, and
    a thread needs no copy of a 5 MB upload. ``workers`` bounds the CPU and memory
    spent at once (each decode is at most ``MAX_PIXELS``); further photos wait in
    the pool's queue, and each request's body is already capped."""

    def __init__(self, workers: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photo")

    async def clean(self, data: bytes, field: str) -> Photo:
        """``reencode`` in the pool; raises its 422s. The cheap checks run first, so
        junk never occupies a worker."""
        check_photo(data, field)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, reencode, data, field)

    async def clean_all(self, items: Sequence[tuple[bytes, str]]) -> list[Photo]:
        """Each ``(data, field)`` re-encoded, in order; the first refusal is raised."""
        results = await asyncio.gather(*(self.clean(d, f) for d, f in items),
                                       return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, Photo)]

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


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
