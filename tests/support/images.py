"""Real, small images for tests (intake decodes and re-encodes every photo, so the
bytes must be an image, not just its magic number)."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (32, 24),
                color: tuple[int, int, int] = (200, 40, 40), **save: object) -> bytes:
    """An image of ``size`` in ``fmt`` (JPEG, PNG, WEBP) filled with ``color``."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt, **save)
    return buf.getvalue()


JPEG = image_bytes("JPEG")
PNG = image_bytes("PNG", color=(40, 200, 40))
WEBP = image_bytes("WEBP", color=(40, 40, 200))


def decodes(data: bytes) -> tuple[str, tuple[int, int]]:
    """(format, size) of ``data``; raises if it is not an image."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return str(img.format), img.size
