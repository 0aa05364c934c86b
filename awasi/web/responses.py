"""JSON responses, encoded with ``awasi.jsoncodec`` (aiohttp's own helper uses the
standard library's slower encoder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from awasi import jsoncodec


def json_response(data: Any, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=jsoncodec.dumps_bytes(data), status=status, headers=headers,
                        content_type="application/json")
