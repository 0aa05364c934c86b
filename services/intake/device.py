"""The device id: one random id per browser (or API client that keeps cookies), in a
signed, HttpOnly cookie, so that "once per device" (a support) can be counted
without an account and without keying on the IP address alone (a whole kampung may
share one mobile carrier's address).

One small module on purpose: the submission rate limit may key on the same cookie
later (``ratelimit.py``), and the two should stay one cookie.

The id is random (128 bits), never derived from anything about the person, and the
server keeps no list of issued ids: the signature is the proof it came from us. A
client that throws its cookie away gets a new id; the per-address limit on supports
(``participation.py``) bounds what that buys.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from awasi import signing
from awasi.web import keys

COOKIE = "awasi_device"
PURPOSE = "device"
MAX_AGE_S = 2 * 365 * 86_400


def device_id(request: web.Request) -> str | None:
    """The request's device id if its cookie carries a valid signature, else None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        value = signing.verify(request.app[keys.SETTINGS].secret_key, PURPOSE, token, MAX_AGE_S)
    except signing.InvalidSignature:
        return None
    return value if isinstance(value, str) and 16 <= len(value) <= 64 else None


def ensure_device(request: web.Request) -> tuple[str, bool]:
    """``(device id, new)``: the request's id, or a fresh one (``new``) that the
    caller must send back with ``remember``."""
    existing = device_id(request)
    if existing is not None:
        return existing, False
    return secrets.token_urlsafe(16), True


def remember(request: web.Request, response: web.StreamResponse, device: str) -> None:
    """Set the signed device cookie on ``response`` (HttpOnly, SameSite=Lax, two years)."""
    token = signing.sign(request.app[keys.SETTINGS].secret_key, PURPOSE, device)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", max_age=MAX_AGE_S,
                        path="/")
