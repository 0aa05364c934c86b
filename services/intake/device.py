"""The device id: one random id per browser (or API client that keeps cookies), in a
signed, HttpOnly cookie that intake gives every client. Rate limits key on it, so the
many phones that carrier NAT puts behind one address are told apart, and "once per
device" (a support, a survey answer) is counted without an account and without
keying on the IP address alone.

The id is random (128 bits) and means nothing; the server keeps no list of issued
ids, it is never logged or put on a topic (supports store only an HMAC of it). It is
signed (``awasi.signing``) so a client cannot choose ids at will: a fresh one costs a
request, and the per-address ceilings bound what throwing cookies away buys.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from awasi import signing
from awasi.web import keys

COOKIE = "awasi_device"
PURPOSE = "device"
MAX_AGE_S = 2 * 365 * 86_400
_DEVICE = web.RequestKey("intake.device", str)
_FRESH = web.RequestKey("intake.device_fresh", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _from_cookie(request: web.Request) -> str | None:
    """The device id of a valid cookie, or None (none, or forged, altered, expired)."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 200:
        return None
    try:
        value = signing.verify(request.app[keys.SETTINGS].secret_key, PURPOSE, raw, MAX_AGE_S)
    except signing.InvalidSignature:
        return None
    return value if isinstance(value, str) and 16 <= len(value) <= 64 else None


def device_of(request: web.Request) -> tuple[str, bool]:
    """The request's device id and whether it is fresh (the client brought no valid
    cookie; the id goes out on this response). Needs ``device_middleware``."""
    return request[_DEVICE], request[_FRESH]


def device_id(request: web.Request) -> str | None:
    """The request's device id if the client brought a valid cookie, else None."""
    if _FRESH in request:
        return None if request[_FRESH] else request[_DEVICE]
    return _from_cookie(request)


def ensure_device(request: web.Request) -> tuple[str, bool]:
    """``(device id, new)``: the request's id, or a fresh one (``new``) that goes out
    with the response (the middleware sets it; ``remember`` for a response that is
    raised rather than returned)."""
    if _DEVICE in request:
        return device_of(request)
    existing = _from_cookie(request)
    return (existing, False) if existing else (secrets.token_urlsafe(16), True)


def remember(request: web.Request, response: web.StreamResponse, device: str) -> None:
    """Set the signed device cookie on ``response`` (HttpOnly, SameSite=Lax; ``Secure``
    over https). The middleware does it for a returned response; a handler calls it for
    a redirect raised as an exception, which never passes back through the middleware."""
    token = signing.sign(request.app[keys.SETTINGS].secret_key, PURPOSE, device)
    response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, path="/", httponly=True,
                        samesite="Lax", secure=request.secure)


@web.middleware
async def device_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the device id on the request; give a client without a valid cookie a new
    id in a cookie on the response (HttpOnly; ``Secure`` over https, see
    awasi.web.headers)."""
    current = _from_cookie(request)
    request[_FRESH] = current is None
    request[_DEVICE] = current or secrets.token_urlsafe(16)
    response = await handler(request)
    if current is None and not response.prepared:
        remember(request, response, request[_DEVICE])
    return response
