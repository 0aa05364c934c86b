"""Internal notes on a ticket: the agency's own working notes.

Who reads them: the agency's staff and heads (their own tickets only, like every
ticket endpoint) and panel members, who read every case. Never the citizen: a note
is not an event, so it never reaches a topic, intake, or a public page. The panel
reads them here, through the router's API (identity tokens work at both services),
rather than as an event on the router's topic, because a note is free text that
may name people (the reporter included) and nothing on a topic may carry personal
data. Notes are never edited or deleted: each names its author and time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import Field

from awasi.identity import User, require_user
from awasi.identity.store import get_user
from awasi.web import keys
from awasi.web.body import parse_json
from awasi.web.responses import json_response
from services.router import api, db
from services.router.keys import CLOCK

PANEL_ROLES = ("panel",)


class NoteBody(api._Body):
    body: str = Field(min_length=1, max_length=5000)


def note_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "author": row["author"], "agency": row["agency"],
            "body": row["body"], "created_at": row["created_at"].isoformat()}


async def add(conn: asyncpg.Connection, user: User, ticket_id: str, body: str,
              now: datetime) -> asyncpg.Record:
    """A note by ``user`` on their agency's ticket (any status: notes document the
    work, also after it ends). Raises ``TicketNotFound``."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    return await db.add_note(conn, t, user.username, body, now)


async def post_note(request: web.Request) -> web.Response:
    user = await require_user(request, api.AGENCY_ROLES)
    body = await parse_json(request, NoteBody)
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        row = await add(conn, user, request.match_info["id"], body.body, request.app[CLOCK]())
    return json_response(note_json(row), status=201)


async def get_notes(request: web.Request) -> web.Response:
    user = await require_user(request, api.AGENCY_ROLES)
    pool = request.app[keys.POOL]
    t = await db.get_for_agency(pool, request.match_info["id"], user.agency)
    rows = await db.notes(pool, t["id"])
    return json_response({"notes": [note_json(r) for r in rows], "count": len(rows)})


async def get_case_notes(request: web.Request) -> web.Response:
    """The panel's read: a case's notes by its complaint id (the id the panel knows),
    each with its author's role today (``null`` for an account that no longer
    exists): the panel console shows who wrote a note in what capacity."""
    await require_user(request, PANEL_ROLES)
    pool = request.app[keys.POOL]
    t = await db.ticket_by_complaint(pool, request.match_info["complaint_id"])
    rows = await db.notes(pool, t["id"])
    roles = {}
    for author in {r["author"] for r in rows}:  # a handful of people per ticket
        account = await get_user(pool, author)
        roles[author] = account.role if account else None
    return json_response({"notes": [note_json(r) | {"author_role": roles[r["author"]]}
                                    for r in rows], "count": len(rows)})


def add_routes(app: web.Application) -> None:
    spec, r = app[keys.OPENAPI], app.router
    spec.add(r, "POST", "/api/v1/tickets/{id}/notes", post_note, tags=["tickets"],
             secured=True, summary="Add an internal note (the agency and the panel read it,"
                                   " never the citizen)",
             body=NoteBody, responses={201: {"type": "object"}},
             errors=(400, 404, 415, 422))
    spec.add(r, "GET", "/api/v1/tickets/{id}/notes", get_notes, tags=["tickets"],
             secured=True, summary="A ticket's internal notes, oldest first",
             responses={200: {"type": "object"}}, errors=(404,))
    spec.add(r, "GET", "/api/v1/cases/{complaint_id}/notes", get_case_notes, tags=["panel"],
             secured=True, summary="Panel members: a case's internal notes, by complaint id",
             responses={200: {"type": "object"}}, errors=(404,))
