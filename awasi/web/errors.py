"""HTTP errors as data, and the one middleware that renders them as
``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from awasi.web.responses import json_response

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client should see. Subclasses fix the status and code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code is not None:
            self.code = code
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class Unavailable(ApiError):
    status, code = 503, "unavailable"


def field_error(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    """A 422 naming ``field`` (the same shape as the pydantic-based errors)."""
    return ValidationFailed(
        f"Invalid value for '{field}': {message}",
        details={"fields": [{"field": field, "message": message, "type": type_}]},
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(err: ApiError) -> web.Response:
    return json_response(
        error_body(err.code, err.message, err.details), status=err.status, headers=err.headers
    )


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_json(request: web.Request) -> bool:
    """API paths always answer JSON; pages answer HTML unless JSON is asked for."""
    if request.path.startswith(("/api/", "/open311/", "/telegram/")):
        return True
    return "application/json" in request.headers.get("Accept", "")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error in the documented JSON shape (pages may opt out by
    raising their own HTML responses)."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "text/html" and not wants_json(request):
            raise
        code = _HTTP_CODES.get(e.status, "http_error")
        message = e.reason if e.text is None or e.text.startswith(f"{e.status}:") else e.text
        return json_response(
            error_body(code, message or e.reason), status=e.status,
            headers={k: v for k, v in e.headers.items() if k.lower() in ("allow", "retry-after")},
        )
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return json_response(
            error_body("internal_error", "Internal error; it has been logged."), status=500
        )
