"""Possible duplicates on a ticket, and linking a duplicate to its original.

Who sees what
  Agency staff and heads: on their own agency's ticket, the open tickets of their
  own agency with the same region and category that read alike (nothing of another
  agency: staff never see another agency's tickets). The triage officer: on a ticket
  of their region's triage queue, the open tickets of the region with the same
  category, whichever agency has them (they route all of the region's complaints).

How they are found
  The router's own copy of each complaint (``router.tickets``: text, region,
  category, pin), never intake's tables. The newest ``CANDIDATES`` open tickets of
  the region and category are read through ``tickets_open_region_category`` and
  scored with ``awasi.similarity`` (the same rule as the similar reports a citizen
  is offered while filing: trigram similarity or full-text rank, closer pins
  higher), so the lookup's cost does not grow with the history. Agency staff's look
  reads ``tickets_open_agency_category`` the same way.

Linking
  ``link`` makes the ticket a duplicate of an open original of the same agency (for
  the triage officer: of the same region), never itself. The duplicate ends
  (``ticket.duplicate_linked`` moves it to ``rejected`` in the one lifecycle, and
  the panel reviews it like every rejection); its citizen is told by intake to
  follow the original. Both rows are locked in id order, so two staff linking A to
  B and B to A at once serialise, and the second finds its original ended: links
  never form a cycle.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from awasi import lifecycle, similarity
from awasi.catalog import Catalog
from awasi.events.payloads import TicketDuplicateLinked
from awasi.identity import User, require_user
from awasi.identity.web import CSRF_FIELD
from awasi.web import keys
from awasi.web.body import parse_json, read_form, validate
from awasi.web.errors import ApiError, ValidationFailed
from awasi.web.responses import json_response
from services.router import api, db, domain
from services.router.errors import InvalidTransition, TicketNotFound
from services.router.keys import CATALOG, CLOCK, TRIGRAM

LIMIT = 5
# How many of the newest open tickets of the region and category are compared.
CANDIDATES = 500
ROLES = (*api.AGENCY_ROLES, *api.TRIAGE_ROLES)
_OPEN_SQL = ", ".join(f"'{s}'" for s in lifecycle.OPEN)  # constants: the index's predicate
# How much of a candidate's text the list shows (enough to judge, not a copy).
EXCERPT = 300


class DuplicateOfBody(BaseModel):
    """The original: its ticket id or its tracking code."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    original: str = Field(min_length=1, max_length=64)


def _invalid_original(message: str) -> ValidationFailed:
    return ValidationFailed(f"Invalid value for 'original': {message}", details={"fields": [
        {"field": "original", "message": message, "type": "value_error"}]})


def _scope(user: User) -> dict[str, Any]:
    """What of the router a user's duplicates come from (see the module's text)."""
    if user.role in api.TRIAGE_ROLES:
        return {"triage": True, "triage_region": user.region}
    return {"agency": user.agency}


async def ticket_for(conn: asyncpg.Connection | asyncpg.Pool, user: User,
                     ticket_id: str) -> asyncpg.Record:
    """The ticket the user may look at: their agency's, or (triage) one of their
    region's triage queue. Raises ``TicketNotFound`` alike for any other."""
    if user.role in api.TRIAGE_ROLES:
        row = await conn.fetchrow(
            "SELECT * FROM router.tickets WHERE id = $1 AND status = 'triage'"
            " AND ($2::text IS NULL OR region = $2)", db.parse_id(ticket_id), user.region)
        if row is None:
            raise TicketNotFound()
        return row
    return await db.get_for_agency(conn, ticket_id, user.agency)


def candidates_sql(trigram: bool, with_location: bool, by_agency: bool = True) -> str:
    """Parameters: $1 region, $2 category, $3 query text, $4 the ticket's id, $5 agency
    (``by_agency``; NULL for the triage officer's region-wide look), $6 limit, $7
    candidates, then $8 lat and $9 lon when ``with_location``.

    Two shapes, so that each reads its own partial index in date order and stops at
    ``$7`` rows: an agency's open tickets of the category
    (``tickets_open_agency_category``), or the region's (``tickets_open_region_category``).
    One statement with ``($5 IS NULL OR agency = $5)`` would let the planner pick
    neither (bench/duplicates.py measured it four times slower)."""
    point = ("$8", "$9") if with_location else None
    f = similarity.fragments(similarity.DOC, "$3", trigram, point)
    distance = (f"CASE WHEN lat IS NULL OR lon IS NULL THEN NULL ELSE "
                f"{similarity.distance_sql('$8', '$9')} END" if with_location else "NULL")
    scope = "agency = $5::text" if by_agency else "$5::text IS NULL"
    return (
        "WITH candidates AS (SELECT id, tracking_code, status, agency, title, description,"
        " submitted_at, support_count, (location->>'lat')::float8 AS lat,"
        " (location->>'lon')::float8 AS lon FROM router.tickets"
        f" WHERE {scope} AND region = $1 AND category = $2 AND status IN ({_OPEN_SQL})"
        " AND id <> $4 ORDER BY submitted_at DESC LIMIT $7),"
        f" scored AS (SELECT c.*, {f.score} AS text_score FROM candidates c,"
        f" LATERAL (SELECT {f.doc}) d WHERE {f.match})"
        f" SELECT *, text_score{f.near} AS score, {distance} AS distance_km FROM scored"
        " ORDER BY score DESC, submitted_at DESC LIMIT $6")


def _point(row: asyncpg.Record) -> tuple[float, float] | None:
    loc = row["location"] or {}
    lat, lon = loc.get("lat"), loc.get("lon")
    return (float(lat), float(lon)) if lat is not None and lon is not None else None


async def possible(pool: asyncpg.Pool, trigram: bool, user: User, ticket: asyncpg.Record,
                   limit: int = LIMIT) -> list[asyncpg.Record]:
    """Up to ``limit`` open tickets in the user's scope that may be the same problem
    as ``ticket``, best first."""
    terms = similarity.search_terms(f"{ticket['title'] or ''} {ticket['description']}")
    if not terms:
        return []
    point = _point(ticket)
    agency = None if user.role in api.TRIAGE_ROLES else user.agency
    args: list[Any] = [ticket["region"], ticket["category"],
                       similarity.query_text(terms, trigram), ticket["id"], agency, limit,
                       CANDIDATES]
    if point is not None:
        args += list(point)
    return list(await pool.fetch(candidates_sql(trigram, point is not None, agency is not None),
                                 *args))


async def linked_here(conn: asyncpg.Connection | asyncpg.Pool,
                      ticket_id: uuid.UUID) -> list[asyncpg.Record]:
    """The tickets linked to this one as its duplicates, oldest link first."""
    return list(await conn.fetch(
        "SELECT id, tracking_code, agency, updated_at FROM router.tickets"
        " WHERE duplicate_of = $1 ORDER BY updated_at, id LIMIT 200", ticket_id))


def candidate_json(row: asyncpg.Record) -> dict[str, Any]:
    text = row["description"]
    return {"id": str(row["id"]), "tracking_code": row["tracking_code"],
            "status": row["status"], "agency": row["agency"], "title": row["title"],
            "excerpt": text if len(text) <= EXCERPT else text[:EXCERPT].rstrip() + "…",
            "submitted_at": row["submitted_at"].isoformat(),
            "support_count": row["support_count"], "score": round(float(row["score"]), 4),
            "distance_km": (None if row["distance_km"] is None
                            else round(float(row["distance_km"]), 2))}


def linked_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": str(row["id"]), "tracking_code": row["tracking_code"],
            "agency": row["agency"], "linked_at": row["updated_at"].isoformat()}


_CODE = re.compile(r"[\s_.]")


async def link(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
               original: str, now: datetime) -> asyncpg.Record:
    """Link the ticket to ``original`` (a ticket id or tracking code) as its duplicate;
    returns the duplicate's row. Raises ``TicketNotFound`` (not the user's ticket),
    ``ValidationFailed`` naming ``original`` (itself, unknown, outside the user's
    scope, or no longer open) or ``InvalidTransition`` (the ticket's status does not
    allow it)."""
    tid = db.parse_id(ticket_id)
    try:
        original_id: uuid.UUID | None = uuid.UUID(original)
    except ValueError:
        original_id = None
    code = _CODE.sub("", original).upper()
    found = await conn.fetchval(
        "SELECT id FROM router.tickets WHERE id = $1 OR tracking_code = $2 LIMIT 1",
        original_id, code)
    # The ticket itself is checked first: a caller learns nothing about an original
    # through a ticket that is not theirs.
    rows = {r["id"]: r for r in await conn.fetch(
        # Both rows locked in id order: concurrent links of A to B and B to A cannot
        # deadlock, and the second sees the first's result.
        "SELECT * FROM router.tickets WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        [tid, *([found] if found is not None else [])])}
    t = rows.get(tid)
    if t is None or not _in_scope(user, t, own=True):
        raise TicketNotFound()
    if found == tid:
        raise _invalid_original("a ticket cannot be a duplicate of itself")
    o = rows.get(found) if found is not None else None
    if o is None or not _in_scope(user, o, own=False) or o["region"] != t["region"]:
        raise _invalid_original("no open ticket of your agency (triage: your region) has "
                                "this id or tracking code")
    if "link_duplicate" not in lifecycle.staff_actions(t["status"]):
        raise InvalidTransition("link as a duplicate", t["status"])
    if o["status"] not in lifecycle.OPEN or o["duplicate_of"] is not None:
        raise _invalid_original(f"the original is {o['status']}: link to an open ticket")
    state = domain.state_of(t)
    step = lifecycle.apply(state, "ticket.duplicate_linked", lifecycle.next_seq(state))
    row = await db.update(conn, t, now, **domain.state_columns(step.state),
                          duplicate_of=o["id"], paused_at=None, warned=[])
    await domain.emit(conn, row, TicketDuplicateLinked(
        original_complaint_id=o["complaint_id"], original_tracking_code=o["tracking_code"],
        agency=row["agency"]), now, user.username)
    # The original's own timeline says a duplicate was linked to it (the router's
    # record only: not an event, the original's citizen is not concerned).
    await db.add_timeline(conn, o["id"], "duplicate.linked_here", now, user.username,
                          o["agency"], {"tracking_code": t["tracking_code"],
                                        "ticket_id": str(t["id"])})
    return row


def _in_scope(user: User, row: asyncpg.Record, *, own: bool) -> bool:
    """The ticket (``own``) or the original is within what the user may act on."""
    if user.role in api.TRIAGE_ROLES:
        if user.region is not None and row["region"] != user.region:
            return False
        return row["status"] == "triage" if own else True
    return row["agency"] is not None and row["agency"] == user.agency


# --- HTTP: the API ---------------------------------------------------------------------

async def get_duplicates(request: web.Request) -> web.Response:
    """``GET /api/v1/tickets/{id}/duplicates``: the possible duplicates of the ticket
    and the tickets already linked to it."""
    user = await require_user(request, ROLES)
    pool = request.app[keys.POOL]
    ticket = await ticket_for(pool, user, request.match_info["id"])
    rows = await possible(pool, request.app[TRIGRAM], user, ticket)
    return json_response({
        "ticket": str(ticket["id"]),
        "duplicate_of": str(ticket["duplicate_of"]) if ticket["duplicate_of"] else None,
        "candidates": [candidate_json(r) for r in rows],
        "linked": [linked_json(r) for r in await linked_here(pool, ticket["id"])]})


async def post_duplicate_of(request: web.Request) -> web.Response:
    """``POST /api/v1/tickets/{id}/duplicate-of`` with ``{"original": id or code}``."""
    user = await require_user(request, ROLES)
    body = await parse_json(request, DuplicateOfBody)
    assert isinstance(body, DuplicateOfBody)
    now = request.app[CLOCK]()
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        row = await link(conn, request.app[CATALOG], user, request.match_info["id"],
                         body.original, now)
    out = api.ticket_json(row, now)
    out["duplicate_of"] = str(row["duplicate_of"])
    return json_response(out)


class Candidates(BaseModel):
    ticket: str
    duplicate_of: str | None
    candidates: list[dict[str, Any]]
    linked: list[dict[str, Any]]


def add_routes(app: web.Application) -> None:
    oapi = app[keys.OPENAPI]
    r = app.router
    oapi.add(r, "GET", "/api/v1/tickets/{id}/duplicates", get_duplicates, tags=["tickets"],
             secured=True, summary="Possible duplicates of a ticket (open tickets of the"
             " agency, or for triage of the region, same category, alike) and those linked"
             " to it", responses={200: Candidates}, errors=(404,))
    oapi.add(r, "POST", "/api/v1/tickets/{id}/duplicate-of", post_duplicate_of,
             tags=["tickets"], secured=True,
             summary="Link the ticket as a duplicate of an open original (same agency; for"
             " triage the same region): it ends, its citizen follows the original",
             body=DuplicateOfBody, responses={200: api.TicketOut},
             errors=(400, 404, 409, 415, 422))


# --- HTTP: the desk's ticket page ------------------------------------------------------

async def page_context(app: web.Application, user: User,
                       ticket: asyncpg.Record) -> dict[str, Any]:
    """What the ticket page's duplicates box shows (``_duplicates.html``)."""
    pool = app[keys.POOL]
    original = None
    if ticket["duplicate_of"] is not None:
        original = await pool.fetchval("SELECT tracking_code FROM router.tickets"
                                       " WHERE id = $1", ticket["duplicate_of"])
    can_link = "link_duplicate" in lifecycle.staff_actions(ticket["status"])
    rows = await possible(pool, app[TRIGRAM], user, ticket) if can_link else []
    return {"duplicates": {
        "candidates": [candidate_json(r) for r in rows], "can_link": can_link,
        "linked": [linked_json(r) for r in await linked_here(pool, ticket["id"])],
        "original": original}}


async def desk_link(request: web.Request) -> web.StreamResponse:
    """The desk's form: link this ticket to the chosen original, then show it."""
    from services.router import desk  # the desk imports this module for its hook

    async def handler(request: web.Request) -> web.StreamResponse:
        user = await require_user(request, api.AGENCY_ROLES)  # checks the CSRF token too
        form = await read_form(request)
        fields = {k: str(v) for k, v in form.items() if k != CSRF_FIELD}
        ticket_id = request.match_info["id"]
        pool = request.app[keys.POOL]
        try:
            body = validate(DuplicateOfBody, {"original": fields.get("original", "")})
            async with pool.acquire() as conn, conn.transaction():
                await link(conn, request.app[CATALOG], user, ticket_id, body.original,
                           request.app[CLOCK]())
        except ApiError as e:
            if e.status == 404:
                raise
            row = await db.get_for_agency(pool, ticket_id, user.agency)
            return await desk.render_ticket(request, user, row, error=e)
        raise web.HTTPSeeOther(f"/tickets/{ticket_id}")

    return await desk.page(handler)(request)


def setup(app: web.Application) -> None:
    """Routes of the API and the desk (whether pg_trgm is there is the app's
    ``TRIGRAM``, decided once at start)."""
    add_routes(app)
    app.router.add_post("/tickets/{id}/duplicate-of", desk_link)
