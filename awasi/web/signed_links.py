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


# --- staff attachments to the citizen --------------------------------------------------
# The router holds the bytes and serves them at ``/attachments/{id}?token=``; intake,
# which shares the secret key, makes the links on the citizen's status page and API
# only (never a public page). The purpose keeps an attachment token from opening a
# photo or a contact, and the reverse.
ATTACHMENT_PURPOSE = "citizen-attachment"
ATTACHMENT_LINK_MAX_AGE_S = 3600


def attachment_link(secret_key: str, router_url: str, attachment_id: str) -> str:
    """An expiring link (``ATTACHMENT_LINK_MAX_AGE_S``) to a staff attachment, served
    by the router at ``router_url`` (``AWASI_ROUTER_URL``)."""
    token = signing.sign(secret_key, ATTACHMENT_PURPOSE, attachment_id)
    return f"{router_url.rstrip('/')}/attachments/{attachment_id}?token={token}"
