"""Recommendations of the panel to an agency, and the agency's answers: public, with
their whole history (``GET /api/v1/recommendations?region=&agency=&status=``).

Flow, only through events (no shortcut between services):
1. A panel member writes one (``POST /api/v1/recommendations``: agency, what, why, by
   when, and the finding or report it comes from). Oversight stores it and writes
   ``recommendation.issued`` to its outbox, with the member in ``panel_actions``.
2. The router learns of it from oversight's topic and shows it on the agency's desk.
3. The agency head answers there (planned / in progress / done / declined with a
   reason); the router writes ``recommendation.answered`` to its topic.
4. Oversight's consumer (``apply``) records each answer as the recommendation's new
   status and a step of its history. Both events go on the audit chain (the issuing
   panel member as the actor; an answer's actor is the agency, as the topic names no
   staff).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from awasi.catalog import Catalog
from awasi.events.consumer import PoisonEvent
from awasi.events.envelope import Envelope
from awasi.events.payloads import RecommendationAnswered, RecommendationIssued
from awasi.identity import require_user
from awasi.web import keys as web_keys
from awasi.web.body import parse_json
from awasi.web.responses import json_response
from services.oversight import chain, keys, panel
from services.oversight.errors import field_error

EVENT_TYPES = frozenset({"recommendation.issued", "recommendation.answered"})
STATUSES = ("open", "planned", "in_progress", "done", "declined")
# English msgids of each status (translated in locale/*.po), for pages and reports.
STATUS_LABELS = {"open": "Awaiting the agency's answer", "planned": "Action planned",
                 "in_progress": "In progress", "done": "Done", "declined": "Declined"}


class RecommendationIn(BaseModel):
    """``POST /api/v1/recommendations`` (panel)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    agency: str = Field(min_length=1, max_length=40)
    what: str = Field(min_length=5, max_length=2000)
    why: str = Field(min_length=5, max_length=4000)
    due_date: date
    source_kind: Literal["finding", "report", "panel"] = "panel"
    source_ref: str | None = Field(default=None, max_length=64)

    @field_validator("source_ref")
    @classmethod
    def _blank(cls, v: str | None) -> str | None:
        return v or None


async def issue(pool: asyncpg.Pool, catalog: Catalog, body: RecommendationIn, actor: str,
                now: datetime) -> dict[str, Any]:
    """Store a recommendation and its event (one transaction). 422 naming the field
    for an unknown agency, a due date in the past, or a finding that does not exist
    or concerns another agency."""
    agency = catalog.agencies.get(body.agency)
    if agency is None:
        raise field_error("agency", f"unknown agency {body.agency!r}")
    region = catalog.regions[agency.region]
    if body.due_date < now.astimezone(ZoneInfo(region.timezone)).date():
        raise field_error("due_date", "the date has passed already")
    rid = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        if body.source_kind == "finding":
            if body.source_ref is None or not body.source_ref.isdigit():
                raise field_error("source_ref", "the id of the finding")
            found = await conn.fetchval("SELECT agency FROM oversight.findings WHERE id = $1",
                                        int(body.source_ref))
            if found != body.agency:
                raise field_error("source_ref", "no finding with this id for this agency")
        await conn.execute(
            "INSERT INTO oversight.recommendations (id, region, agency, what, why, due_date,"
            " source_kind, source_ref, created_by, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            rid, region.code, agency.code, body.what, body.why, body.due_date,
            body.source_kind, body.source_ref, actor, now)
        env = Envelope.build(RecommendationIssued(
            recommendation_id=str(rid), region=region.code, agency=agency.code,
            what=body.what, why=body.why, due_date=body.due_date,
            source_kind=body.source_kind, source_ref=body.source_ref),
            complaint_id=f"rec:{rid}", producer="oversight", occurred_at=now)
        await conn.execute(
            "INSERT INTO oversight.recommendation_updates (recommendation_id, event_id,"
            " status, note, by_side, at) VALUES ($1, $2, 'open', NULL, 'panel', $3)",
            rid, env.event_id, now)
        await panel.emit(conn, env, actor)
        return await one(conn, rid)


async def apply(conn: asyncpg.Connection, env: Envelope, now: datetime) -> None:
    """Consume a recommendation event (inside the consumer's transaction): put it on
    the chain; an answer also moves the status and adds a step to the history. Raises
    ``PoisonEvent`` (dead-letter) for an answer to an unknown recommendation or from
    another agency than the addressee."""
    if env.type == "recommendation.issued":
        actor = await conn.fetchval(
            "SELECT actor FROM oversight.panel_actions WHERE event_id = $1", env.event_id)
        await chain.append(conn, env, recorded_at=now, actor=actor)
        return
    body = RecommendationAnswered.model_validate(env.payload)
    try:
        rid = uuid.UUID(body.recommendation_id)
    except ValueError as e:
        raise PoisonEvent("answer to a malformed recommendation id") from e
    row = await conn.fetchrow(
        "SELECT agency FROM oversight.recommendations WHERE id = $1 FOR UPDATE", rid)
    # Never silently dropped: an answer oversight cannot apply goes to the dead-letter
    # topic with the reason (the router only answers what oversight issued).
    if row is None:
        raise PoisonEvent(f"answer to unknown recommendation {rid}")
    if row["agency"] != body.agency:
        raise PoisonEvent(f"answer from {body.agency} to a recommendation for {row['agency']}")
    await chain.append(conn, env, recorded_at=now, actor=f"agency:{body.agency}")
    await conn.execute(
        "UPDATE oversight.recommendations SET status = $2, updated_at = $3,"
        " action_plan = CASE WHEN $2 = 'planned' THEN $4 ELSE action_plan END"
        " WHERE id = $1", rid, body.status, env.occurred_at, body.note)
    await conn.execute(
        "INSERT INTO oversight.recommendation_updates (recommendation_id, event_id, status,"
        " note, by_side, at) VALUES ($1, $2, $3, $4, 'agency', $5)"
        " ON CONFLICT (event_id) DO NOTHING",
        rid, env.event_id, body.status, body.note, env.occurred_at)


_PUBLIC = ("id, region, agency, what, why, due_date, source_kind, source_ref, status,"
           " action_plan, created_at, updated_at")


def _public(row: asyncpg.Record, history: list[asyncpg.Record]) -> dict[str, Any]:
    # An allow-list: the panel member's name is on the chain, not on the public page.
    return {
        "id": str(row["id"]), "region": row["region"], "agency": row["agency"],
        "what": row["what"], "why": row["why"], "due_date": row["due_date"].isoformat(),
        "source": {"kind": row["source_kind"], "ref": row["source_ref"]},
        "status": row["status"], "action_plan": row["action_plan"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "history": [{"status": h["status"], "note": h["note"], "by": h["by_side"],
                     "at": h["at"].isoformat()} for h in history],
    }


async def one(conn: asyncpg.Connection, rid: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(f"SELECT {_PUBLIC} FROM oversight.recommendations WHERE id = $1",
                              rid)
    history = await conn.fetch(
        "SELECT status, note, by_side, at FROM oversight.recommendation_updates"
        " WHERE recommendation_id = $1 ORDER BY id", rid)
    return _public(row, history)


async def listing(conn: asyncpg.Connection, *, region: str | None = None,
                  agency: str | None = None, status: str | None = None,
                  limit: int = 500) -> list[dict[str, Any]]:
    """Recommendations (newest first) with their history, filtered."""
    rows = await conn.fetch(
        f"SELECT {_PUBLIC} FROM oversight.recommendations"
        " WHERE ($1::text IS NULL OR region = $1) AND ($2::text IS NULL OR agency = $2)"
        "   AND ($3::text IS NULL OR status = $3)"
        " ORDER BY created_at DESC, id LIMIT $4", region, agency, status, limit)
    ids = [r["id"] for r in rows]
    steps = await conn.fetch(
        "SELECT recommendation_id, status, note, by_side, at"
        " FROM oversight.recommendation_updates WHERE recommendation_id = ANY($1::uuid[])"
        " ORDER BY id", ids)
    by_rec: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for s in steps:
        by_rec.setdefault(s["recommendation_id"], []).append(s)
    return [_public(r, by_rec.get(r["id"], [])) for r in rows]


# --- web -----------------------------------------------------------------------------

async def post_recommendation(request: web.Request) -> web.Response:
    user = await require_user(request, roles=("panel",))
    body = await parse_json(request, RecommendationIn)
    out = await issue(request.app[web_keys.POOL], request.app[keys.CATALOG], body,
                      user.username, request.app[keys.CLOCK].now())
    return json_response(out, status=201)


async def get_recommendations(request: web.Request) -> web.Response:
    """Public. Filters ``region``, ``agency``, ``status``; 422 naming a bad one."""
    catalog = request.app[keys.CATALOG]
    q = {k: (request.query.get(k) or "").strip() or None for k in ("region", "agency", "status")}
    if q["region"] is not None and q["region"] not in catalog.regions:
        raise field_error("region", f"unknown region {q['region']!r}")
    if q["agency"] is not None and q["agency"] not in catalog.agencies:
        raise field_error("agency", f"unknown agency {q['agency']!r}")
    if q["status"] is not None and q["status"] not in STATUSES:
        raise field_error("status", f"one of {', '.join(STATUSES)}")
    async with request.app[web_keys.POOL].acquire() as conn:
        items = await listing(conn, **q)
    return json_response({"items": items, "count": len(items)})


_OBJ: dict[str, Any] = {"type": "object"}


def add_routes(app: web.Application) -> None:
    api = app[web_keys.OPENAPI]
    params = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in ("region", "agency", "status")]
    api.add(app.router, "GET", "/api/v1/recommendations", get_recommendations,
            tags=["evaluation"], parameters=params,
            summary="The panel's recommendations to agencies, with the agencies' answers "
                    "and progress (public)", responses={200: _OBJ}, errors=(422,))
    api.add(app.router, "POST", "/api/v1/recommendations", post_recommendation,
            tags=["evaluation", "panel"], body=RecommendationIn,
            summary="Address a recommendation to an agency (emits recommendation.issued)",
            responses={201: _OBJ}, secured=True, errors=(400, 413, 415, 422))
