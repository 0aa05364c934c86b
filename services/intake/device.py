"""The device cookie: a random id, signed by us, that intake gives every browser
(and every API client that keeps cookies), so rate limits can tell apart the many
phones that carrier NAT puts behind one address.

The id is random and means nothing; it is never stored, logged or put on a topic,
only counted in the rate limiter's in-memory window for a minute. It is signed
(``awasi.signing``) so a client cannot choose ids at will: a fresh one costs a
request, and the per-address ceiling bounds how many those buy.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from awasi import signing
from awasi.web import keys

COOKIE = "awasi_device"
PURPOSE = "device"
MAX_AGE_S = 365 * 86_400
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
    return value if isinstance(value, str) else None


def device_of(request: web.Request) -> tuple[str, bool]:
    """The request's device id and whether it is fresh (the client brought no valid
    cookie; the id goes out on this response). Needs ``device_middleware``."""
    return request[_DEVICE], request[_FRESH]


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
        token = signing.sign(request.app[keys.SETTINGS].secret_key, PURPOSE, request[_DEVICE])
        response.set_cookie(COOKIE, token, max_age=MAX_AGE_S, path="/", httponly=True,
                            samesite="Lax", secure=request.secure)
    return response
