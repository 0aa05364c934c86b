"""Images from outside, made safe to store and show: checked by their content,
decoded and re-encoded with Pillow so that no metadata survives (EXIF with GPS and
device, XMP, ICC profiles, comments, text chunks), capped in bytes and pixels.

One place for the rule, used by intake (the citizen's photos) and the router
(staff's image attachments to the citizen). Each caller names its own cap and the
word its error codes start with (``photo_too_large``, ``attachment_too_large``).
"""

from __future__ import annotations

import asyncio
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, ImageOps

from awasi.web.errors import field_error

# Decompression-bomb limit: a 5 MB file may claim 50 000 x 50 000 pixels. 40 MP is
# above any phone camera's default output and keeps one decode near 160 MB (RGBA).
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 85
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
IMAGE_TYPES = tuple(_FORMATS)


@dataclass(frozen=True, slots=True)
class CleanImage:
    """A checked image: ``content_type`` is what the bytes are, not what was claimed.
    After ``reencode`` the bytes are a fresh encoding with no metadata."""

    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageRules:
    """What one caller accepts: ``noun`` starts the error codes and messages
    (``photo`` -> ``photo_too_large``, "the photo is empty"), ``max_bytes`` caps the
    upload."""

    noun: str
    max_bytes: int


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` from its magic bytes (JPEG, PNG, WebP), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check(data: bytes, field: str, rules: ImageRules) -> CleanImage:
    """A ``CleanImage`` for these bytes (not yet re-encoded); raises a 422 naming
    ``field`` (``<noun>_empty``, ``<noun>_too_large``, ``<noun>_type``) if empty,
    above ``rules.max_bytes`` or not a JPEG, PNG or WebP image. Cheap: no decoding."""
    n = rules.noun
    if not data:
        raise field_error(field, f"the {n} is empty", f"{n}_empty")
    if len(data) > rules.max_bytes:
        raise field_error(field, f"a {n} may be at most {_size(rules.max_bytes)}",
                          f"{n}_too_large")
    kind = sniff(data)
    if kind is None:
        raise field_error(field, "only JPEG, PNG or WebP images are accepted", f"{n}_type")
    return CleanImage(kind, data)


def _size(n: int) -> str:
    mb = 1024 * 1024
    return f"{n // mb} MB" if n % mb == 0 else f"{n} bytes"


def configure_pillow() -> None:
    """Set Pillow's decompression-bomb limit to ``MAX_PIXELS`` and make its warning
    (between 1x and 2x the limit) an error, so it refuses rather than decodes.
    Process-wide; called once when an app starts (not at import)."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)


def reencode(data: bytes, field: str, rules: ImageRules) -> CleanImage:
    """Decode ``data`` and encode it again in the same format, with the EXIF
    orientation applied and nothing else kept: the result carries pixels only.

    Raises a 422 naming ``field``: those of ``check``, ``<noun>_too_many_pixels``
    above ``MAX_PIXELS``, ``<noun>_unreadable`` if it does not decode. CPU-bound: run
    it through ``ImageCleaner``, not on the event loop."""
    kind = check(data, field, rules).content_type
    n = rules.noun
    try:
        clean = _decode(data, kind)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise field_error(field, f"the image has more than {MAX_PIXELS // 1_000_000} "
                                 "million pixels", f"{n}_too_many_pixels") from e
    except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many types on bad input
        raise field_error(field, "the image could not be read", f"{n}_unreadable") from e
    out = io.BytesIO()
    if kind == "image/jpeg":
        clean.save(out, "JPEG", quality=JPEG_QUALITY)
    elif kind == "image/png":
        clean.save(out, "PNG")
    else:
        clean.save(out, "WEBP", quality=JPEG_QUALITY)
    return CleanImage(kind, out.getvalue())


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


class ImageCleaner:
    """Re-encodes images on a small thread pool, off the event loop.

    Threads, not processes: Pillow releases the GIL while it decodes and encodes, and
    a thread needs no copy of a 5 MB upload. ``workers`` bounds the CPU and memory
    spent at once (each decode is at most ``MAX_PIXELS``); further images wait in
    the pool's queue, and each request's body is already capped."""

    def __init__(self, rules: ImageRules, workers: int = 2, name: str = "image") -> None:
        self.rules = rules
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def clean(self, data: bytes, field: str) -> CleanImage:
        """``reencode`` in the pool; raises its 422s. The cheap checks run first, so
        junk never occupies a worker."""
        check(data, field, self.rules)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, reencode, data, field, self.rules)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
