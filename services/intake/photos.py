"""Photos: checked by their content (magic bytes), capped in size and number, stored
in the intake schema, and served to staff only through expiring signed links."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass

from aiohttp import web

from awasi import signing
from awasi.web import keys
from awasi.web.errors import Forbidden, NotFound
from services.intake.errors import field_error

MAX_PHOTOS = 3
# Per photo. A phone photo re-encoded by the browser or the camera app is well below.
MAX_PHOTO_BYTES = 5 * 1024 * 1024
LINK_MAX_AGE_S = 3600
PURPOSE = "photo"


@dataclass(frozen=True, slots=True)
class Photo:
    """A checked photo: ``content_type`` is what the bytes are, not what was claimed."""

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
    """A ``Photo`` for these bytes; raises a 422 naming ``field`` if empty, too large
    or not a JPEG, PNG or WebP image."""
    if not data:
        raise field_error(field, "the photo is empty", "photo_empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise field_error(field, f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
                          "photo_too_large")
    kind = sniff(data)
    if kind is None:
        raise field_error(field, "only JPEG, PNG or WebP images are accepted", "photo_type")
    return Photo(kind, data)


def decode_base64_photo(data: str, field: str) -> Photo:
    """A photo from base64 text (standard alphabet, padding optional)."""
    try:
        raw = base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise field_error(field, "not valid base64", "photo_base64") from e
    return check_photo(raw, field)


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
    photo_id = request.match_info["photo_id"]
    token = request.query.get("token", "")
    settings = request.app[keys.SETTINGS]
    try:
        signed = signing.verify(settings.secret_key, PURPOSE, token, LINK_MAX_AGE_S)
    except signing.InvalidSignature as e:
        raise Forbidden("The link is invalid or has expired") from e
    if signed != photo_id:
        raise Forbidden("The link is invalid or has expired")
    try:
        pid = uuid.UUID(photo_id)
    except ValueError as e:
        raise NotFound("No such photo") from e
    row = await request.app[keys.POOL].fetchrow(
        "SELECT content_type, data FROM intake.photos WHERE id = $1", pid)
    if row is None:
        raise NotFound("No such photo")
    return web.Response(
        body=bytes(row["data"]), content_type=row["content_type"],
        headers={"Cache-Control": "private, max-age=600", "X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'"},
    )
