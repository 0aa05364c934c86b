"""A case's internal notes on the panel console, read from the router.

The notes live with the ticket in the router's schema; oversight does not copy them
(a note is free text that may name people, so it never travels on a topic) and does
not read the router's tables (each service reads only its own schemas). The case
page asks the router's ``GET /api/v1/cases/{complaint_id}/notes`` server-side, with
the panel member's own token as ``Authorization: Bearer`` (identity tokens work at
both services): the router checks that person's role and account itself, so a
disabled member or another role reads nothing, and no shared service secret exists
to leak. The call has a short timeout: when the router does not answer in time, or
answers anything but a well-formed list, the page says the notes are unavailable and
shows everything else.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator
from datetime import datetime

import aiohttp
from aiohttp import web
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from awasi.web import keys as web_keys
from services.oversight import keys

log = logging.getLogger(__name__)


class Note(BaseModel):
    """What the console shows of a note: an allow-list (anything else the router
    sends is dropped)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    author: str
    author_role: str | None = None
    agency: str | None = None
    body: str
    created_at: datetime


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    notes: list[Note]


_ANSWER = TypeAdapter(_Answer)


async def http_client(app: web.Application) -> AsyncIterator[None]:
    """One client session for the calls to the router, closed at shutdown. The total
    timeout (``AWASI_ROUTER_TIMEOUT_S``) bounds how long a case page waits."""
    settings = app[web_keys.SETTINGS]
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.router_timeout_s),
        # Traced like the router's call to intake; the token is in a header, never in
        # the URL, so the recorded URL carries nothing secret.
        trace_configs=[create_trace_config(
            tracer_provider=app[web_keys.TRACER_PROVIDER])])
    app[keys.ROUTER_HTTP] = session
    try:
        yield
    finally:
        await session.close()


async def case_notes(app: web.Application, complaint_id: str,
                     token: str | None) -> list[Note] | None:
    """The case's notes, oldest first; ``[]`` when the case has no ticket (yet) at
    the router; ``None`` when they cannot be had: no token, the router unreachable,
    slower than the timeout, refusing, or answering something malformed."""
    if not token:
        return None
    url = (f"{app[web_keys.SETTINGS].router_base()}/api/v1/cases/"
           f"{urllib.parse.quote(complaint_id, safe='')}/notes")
    try:
        async with app[keys.ROUTER_HTTP].get(
                url, headers={"Authorization": f"Bearer {token}"},
                allow_redirects=False) as r:
            if r.status == 404:
                return []  # not routed to an agency yet: nobody could write a note
            if r.status != 200:
                log.warning("router answered %s for a case's notes", r.status)
                return None
            answer = _ANSWER.validate_json(await r.read())
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("router unavailable for a case's notes: %s", type(e).__name__)
        return None
    except ValidationError:
        log.warning("router sent malformed notes")
        return None
    return answer.notes
