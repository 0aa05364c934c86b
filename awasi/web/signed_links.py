"""Signed links: a resource id in the path and a token signed for that id.

Photos, public photos and the reporter's contact are all served through links whose
token names the one id in their path, for a limited time. One function checks
such a link, so every one of them answers alike: 403 for a bad, expired or
other id's token, 404 for an id that cannot exist.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from awasi import signing
from awasi.web import keys
from awasi.web.errors import Forbidden, NotFound


def signed_uuid(request: web.Request, purpose: str, param: str, max_age_s: int, *,
                invalid: str, not_found: str) -> uuid.UUID:
    """The id in path parameter ``param`` when the ``token`` query parameter was
    signed for it (``purpose``, within ``max_age_s``); else ``Forbidden(invalid)``,
    or ``NotFound(not_found)`` for an id that is not a UUID."""
    value = request.match_info[param]
    try:
        signed = signing.verify(request.app[keys.SETTINGS].secret_key, purpose,
                                request.query.get("token", ""), max_age_s)
    except signing.InvalidSignature as e:
        raise Forbidden(invalid) from e
    if signed != value:
        raise Forbidden(invalid)
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise NotFound(not_found) from e
