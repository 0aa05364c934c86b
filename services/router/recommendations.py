"""The panel's recommendations on the agency desk: the router learns of each from
oversight's ``recommendation.issued`` events; the agency head answers with an action
plan and progress (``POST /api/v1/recommendations/{id}/answer``: planned /
in_progress / done / declined, ``note`` being the plan, the progress or the reason),
and the router tells oversight with ``recommendation.answered`` on its own topic. No
shortcut between services: oversight's tables are never read here.

Staff and heads see their own agency's recommendations (``GET
/api/v1/recommendations``); only the head answers. The answer's event names the
agency, not the person (the person is in this service's ``recommendation_answers``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import RecommendationAnswered, RecommendationIssued
from awasi.identity import User, require_user
from awasi.web import keys
from awasi.web.body import parse_json, read_form, validate
from awasi.web.errors import ApiError, Conflict, NotFound
from awasi.web.responses import json_response
from services.router.keys import MESSAGES

EVENT_TYPES = frozenset({"recommendation.issued"})
AGENCY_ROLES = ("staff", "head")
# Once done or declined, a recommendation is settled: the panel issues a new one if
# it disagrees.
SETTLED = ("done", "declined")

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]


def with_recommendations(handler: Handler) -> Handler:
    """Route ``recommendation.issued`` here, everything else to the ticket handler."""
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        if envelope.type in EVENT_TYPES:
            await apply(conn, envelope)
        else:
            await handler(conn, envelope)

    return handle


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    p = RecommendationIssued.model_validate(env.payload)
    await conn.execute(
        "INSERT INTO router.recommendations (id, region, agency, what, why, due_date,"
        " source_kind, source_ref, issued_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (id) DO NOTHING",
        uuid.UUID(p.recommendation_id), p.region, p.agency, p.what, p.why, p.due_date,
        p.source_kind, p.source_ref, env.occurred_at)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: Literal["planned", "in_progress", "done", "declined"]
    note: str = Field(min_length=1, max_length=4000,
                      description="the action plan, the progress, or why it is declined")

    @field_validator("note")
    @classmethod
    def _reason(cls, note: str, info: ValidationInfo) -> str:
        if info.data.get("status") == "declined" and len(note) < 10:
            raise ValueError("declining needs a reason (at least 10 characters)")
        return note


def _out(row: asyncpg.Record, answers: list[asyncpg.Record]) -> dict[str, Any]:
    return {"id": str(row["id"]), "agency": row["agency"], "what": row["what"],
            "why": row["why"], "due_date": row["due_date"].isoformat(),
            "source": {"kind": row["source_kind"], "ref": row["source_ref"]},
            "status": row["status"], "issued_at": row["issued_at"].isoformat(),
            "answers": [{"status": a["status"], "note": a["note"], "by": a["answered_by"],
                         "at": a["answered_at"].isoformat()} for a in answers]}


async def load(conn: asyncpg.Connection, agency: str | None,
                rid: uuid.UUID | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM router.recommendations WHERE agency = $1"
        " AND ($2::uuid IS NULL OR id = $2) ORDER BY issued_at DESC", agency, rid)
    answers = await conn.fetch(
        "SELECT * FROM router.recommendation_answers"
        " WHERE recommendation_id = ANY($1::uuid[]) ORDER BY id", [r["id"] for r in rows])
    by: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for a in answers:
        by.setdefault(a["recommendation_id"], []).append(a)
    return [_out(r, by.get(r["id"], [])) for r in rows]


async def list_mine(request: web.Request) -> web.Response:
    user = await require_user(request, AGENCY_ROLES)
    async with request.app[keys.POOL].acquire() as conn:
        items = await load(conn, user.agency)
    return json_response({"items": items, "count": len(items)})


async def record_answer(pool: asyncpg.Pool, user: User, rid: uuid.UUID, body: AnswerIn,
                        now: datetime) -> dict[str, Any]:
    """Store the head's answer and its ``recommendation.answered`` event in one
    transaction; return the recommendation. ``NotFound`` for another agency's or an
    unknown id (leaks nothing), ``Conflict`` once settled (done or declined)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT status FROM router.recommendations WHERE id = $1 AND agency = $2"
            " FOR UPDATE", rid, user.agency)
        if row is None:
            raise NotFound("No such recommendation")
        if row["status"] in SETTLED:
            raise Conflict(f"This recommendation is {row['status']} already",
                           code="not_allowed_now")
        await conn.execute(
            "UPDATE router.recommendations SET status = $2, updated_at = $3 WHERE id = $1",
            rid, body.status, now)
        await conn.execute(
            "INSERT INTO router.recommendation_answers (recommendation_id, status, note,"
            " answered_by, answered_at) VALUES ($1, $2, $3, $4, $5)",
            rid, body.status, body.note, user.username, now)
        await add_to_outbox(conn, "router", topics.ROUTER, Envelope.build(
            RecommendationAnswered(recommendation_id=str(rid), agency=str(user.agency),
                                   status=body.status, note=body.note),
            complaint_id=f"rec:{rid}", producer="router", occurred_at=now))
        return (await load(conn, user.agency, rid))[0]


def parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as e:
        raise NotFound("No such recommendation") from e


async def answer(request: web.Request) -> web.Response:
    """``POST /api/v1/recommendations/{id}/answer`` (the head of the agency)."""
    user = await require_user(request, ("head",))
    rid = parse_id(request.match_info["id"])
    body = await parse_json(request, AnswerIn)
    out = await record_answer(request.app[keys.POOL], user, rid, body, datetime.now(UTC))
    return json_response(out)


# --- the desk page -------------------------------------------------------------------

# English msgids (translated in locale/*.po).
LABELS = {"open": "Awaiting your answer", "planned": "Action planned",
          "in_progress": "In progress", "done": "Done", "declined": "Declined"}


async def desk_page(request: web.Request, error: str | None = None,
                    status: int = 200) -> web.Response:
    from services.router.desk import render

    user = await require_user(request, AGENCY_ROLES)
    async with request.app[keys.POOL].acquire() as conn:
        items = await load(conn, user.agency)
    return render(request, "recommendations.html", {
        "user": user, "items": items, "labels": LABELS, "settled": SETTLED,
        "error": error}, status=status)


async def desk_answer(request: web.Request) -> web.StreamResponse:
    """The head's form (CSRF-checked by ``require_user``): POST, then back to the page;
    a refused answer shows the page again with the reason."""
    user = await require_user(request, ("head",))
    rid = parse_id(request.match_info["id"])
    form = await read_form(request)
    try:
        body = validate(AnswerIn, {"status": str(form.get("status", "")),
                                   "note": str(form.get("note", ""))})
        await record_answer(request.app[keys.POOL], user, rid, body, datetime.now(UTC))
    except ApiError as e:
        if e.status == 404:
            raise
        message = e.message if e.status != 422 else request.app[MESSAGES].gettext(
            "Choose an answer and write the action plan or the progress; declining needs "
            "a reason of at least 10 characters.")
        return await desk_page(request, error=message, status=e.status)
    raise web.HTTPSeeOther(f"/recommendations#rec-{rid}")


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[keys.OPENAPI]
    api.add(app.router, "GET", "/api/v1/recommendations", list_mine, tags=["recommendations"],
            summary="The panel's recommendations to the caller's agency, with its answers",
            responses={200: _OBJ}, secured=True, errors=())
    api.add(app.router, "POST", "/api/v1/recommendations/{id}/answer", answer,
            tags=["recommendations"], body=AnswerIn,
            summary="The agency head answers: planned / in_progress / done / declined "
                    "(emits recommendation.answered)",
            responses={200: _OBJ}, secured=True, errors=(400, 404, 409, 413, 415, 422))


def add_pages(app: web.Application) -> None:
    from services.router.desk import page

    app.router.add_get("/recommendations", page(desk_page))
    app.router.add_post("/recommendations/{id}/answer", page(desk_answer))
