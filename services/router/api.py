"""The router's JSON API (Bearer tokens; the desk's session cookie works too, with
the CSRF header on changes). Staff and heads see and work only their own agency's
tickets; triage officers work their region's triage queue. A ticket of another
agency answers exactly as a ticket that does not exist (404)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from awasi import jsoncodec, lifecycle, textsearch
from awasi.identity import User, require_user
from awasi.web import keys, keyset
from awasi.web.body import parse_json, validate
from awasi.web.errors import ApiError
from awasi.web.responses import json_response
from services.router import assignment, db, domain
from services.router.keys import CATALOG, CLOCK, QUEUE_CHANGES, QUEUE_TAGS, TRIGRAM

AGENCY_ROLES = ("staff", "head")
TRIAGE_ROLES = ("triage",)

Text = Field(min_length=1, max_length=5000)
MAX_WAIT_S = 30.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RequestInfoBody(_Body):
    question: str = Text


class RespondBody(_Body):
    message: str = Text


class ResolveBody(_Body):
    note: str = Text


class TransferBody(_Body):
    agency: str = Field(min_length=1, max_length=40)
    reason: str = Field(min_length=3, max_length=2000)


class RouteBody(_Body):
    agency: str = Field(min_length=1, max_length=40)


class MoveRegionBody(_Body):
    """Wrong city: the region whose triage queue takes it, and the reason."""

    region: str = Field(min_length=1, max_length=10)
    reason: str = Field(min_length=1, max_length=2000)


class RejectBody(_Body):
    """Why triage refuses the complaint: ``reason`` is what the citizen reads."""

    reason_code: Literal["not_a_complaint", "spam", "duplicate"]
    reason: str = Field(min_length=1, max_length=2000)
    duplicate_of: str | None = Field(default=None, max_length=40)


Username = Field(pattern=r"^[a-z0-9._-]{1,64}$")


class AssignBody(_Body):
    """``username``: a staff member or head of the ticket's agency, or null for nobody
    (required, so that "nobody" is always said on purpose)."""

    username: str | None = Username


BULK_MAX = 100


class BulkBody(_Body):
    """Several tickets, one action each, each its own transaction, audit entry and
    event. ``username`` (required for ``assign``) as in ``AssignBody``."""

    action: Literal["acknowledge", "assign"]
    ids: list[str] = Field(min_length=1, max_length=BULK_MAX)
    username: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,64}$")

    @model_validator(mode="after")
    def _check(self) -> BulkBody:
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("ids must not repeat")
        if self.action == "assign" and "username" not in self.model_fields_set:
            raise ValueError("assign needs username (null for nobody)")
        return self


class DeadlinesOut(BaseModel):
    triage_by: AwareDatetime | None
    acknowledge_by: AwareDatetime | None
    resolve_by: AwareDatetime | None
    dispute_until: AwareDatetime | None
    next_due: AwareDatetime | None


class TicketOut(BaseModel):
    id: str
    tracking_code: str
    status: str
    agency: str | None
    region: str
    category: str
    title: str | None
    description: str
    location: dict[str, Any] | None
    privacy: str
    channel: str
    rule: str
    created_at: AwareDatetime
    submitted_at: AwareDatetime
    acknowledged_at: AwareDatetime | None
    resolved_at: AwareDatetime | None
    paused: bool
    overdue: bool
    escalation_level: int
    breached: list[str]
    photo_count: int
    support_count: int
    assignee: str | None
    deadlines: DeadlinesOut


class TimelineEntry(BaseModel):
    kind: str
    occurred_at: AwareDatetime
    actor: str
    agency: str | None
    data: dict[str, Any]


class TicketDetail(TicketOut):
    timeline: list[TimelineEntry]


class TicketList(BaseModel):
    tickets: list[TicketOut]
    count: int
    total: int
    total_exact: bool
    next: str | None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    # Any status of the one lifecycle.
    status: Literal[lifecycle.STATUSES] | None = None  # type: ignore[valid-type]
    overdue: bool | None = None
    due_soon: bool | None = None
    warned: bool | None = None
    category: str | None = Field(default=None, max_length=40)
    tracking_code: str | None = Field(default=None, max_length=40)
    escalated: bool | None = None
    # "me" (the caller), "none" (nobody), or a username of the agency.
    assignee: str | None = Field(default=None, pattern=r"^[a-z0-9._-]{1,64}$")
    # Words to search for (every word, each as a prefix).
    q: str | None = Field(default=None, min_length=1, max_length=200)
    sort: Literal["created", "-created", "deadline", "support"] = "-created"
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=10_000)
    # Keyset paging: the ``next`` token of the previous page.
    after: str | None = Field(default=None, min_length=1, max_length=keyset.MAX_TOKEN)
    # Long-poll: with If-None-Match, wait up to this many seconds for a change.
    wait: float = Field(default=0, ge=0, le=MAX_WAIT_S)

    def filters(self, user: User | None = None, trigram: bool = False) -> db.Filters:
        """The database filters; raises ``ValidationFailed`` (422 naming ``q`` or
        ``after``) for words with no letter or digit, or a token of another list."""
        assignee = self.assignee
        if assignee == "me":
            assignee = user.username if user is not None else None
        elif assignee == "none":
            assignee = ""
        q = None
        if self.q is not None:
            q = textsearch.prefix_query(self.q)
            if q is None:
                raise keyset.invalid("q", "no word to search for")
        if self.after is not None and self.offset:
            raise keyset.invalid("after", "give either after or offset, not both")
        like = textsearch.like_patterns(self.q) if q is not None and trigram else None
        return db.Filters(**self.model_dump(exclude={"wait", "assignee", "q", "after"}),
                          assignee=assignee, q=q, like=like,
                          after=db.parse_after(self.sort, self.after))


def ticket_json(row: asyncpg.Record, now: datetime) -> dict[str, Any]:
    next_due = row["next_due"]
    return {
        "id": str(row["id"]),
        "tracking_code": row["tracking_code"],
        "status": row["status"],
        "agency": row["agency"],
        "region": row["region"],
        "category": row["category"],
        "title": row["title"],
        "description": row["description"],
        "location": row["location"],
        "privacy": row["privacy"],
        "channel": row["channel"],
        "rule": row["rule"],
        "created_at": row["created_at"].isoformat(),
        "submitted_at": row["submitted_at"].isoformat(),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "resolved_at": _iso(row["resolved_at"]),
        "paused": row["status"] in lifecycle.PAUSED,
        "overdue": next_due is not None and next_due < now,
        "escalation_level": row["escalation_level"],
        # Oversight warned that a running clock is close to its deadline.
        "warned": bool(row["warned"]) and row["status"] in lifecycle.WITH_AGENCY,
        "breached": list(row["breached"]),
        "photo_count": len(row["photo_ids"]),
        "support_count": row["support_count"],
        "assignee": row["assignee"],
        "deadlines": {
            "triage_by": _iso(row["triage_by"]),
            "acknowledge_by": _iso(row["acknowledge_by"]),
            "resolve_by": _iso(row["resolve_by"]),
            "dispute_until": _iso(row["dispute_until"]),
            "next_due": _iso(next_due),
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def timeline_json(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{"kind": r["kind"], "occurred_at": r["occurred_at"].isoformat(),
             "actor": r["actor"], "agency": r["agency"], "data": r["data"]} for r in rows]


def _query(request: web.Request) -> ListQuery:
    return validate(ListQuery, dict(request.query))


def list_body(rows: list[asyncpg.Record], now: datetime, f: db.Filters,
              total: tuple[int, bool]) -> bytes:
    """A page of tickets: ``count`` on this page, ``total`` matching (``total_exact``
    false: an estimate, see ``db.count_tickets``), ``next`` the ``after`` token of
    the following page (None on the last)."""
    return jsoncodec.dumps_bytes(page_json(rows, now, f, total))


def page_json(rows: list[asyncpg.Record], now: datetime, f: db.Filters,
              total: tuple[int, bool]) -> dict[str, Any]:
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    return {"tickets": [ticket_json(r, now) for r in rows], "count": len(rows),
            "total": total[0], "total_exact": total[1],
            "next": db.page_token(f.sort, rows[-1]) if more and rows else None}


async def read_page(pool: asyncpg.Pool, now: datetime, f: db.Filters,
                    **where: Any) -> tuple[list[asyncpg.Record], tuple[int, bool]]:
    """One page (plus one row, to know whether another follows) and the count."""
    if f.q is None:
        rows = await db.list_tickets(pool, now, replace(f, limit=f.limit + 1), **where)
        return rows, await db.count_tickets(pool, now, f, **where)
    async with pool.acquire() as conn, conn.transaction():
        agency = where.get("agency")
        f = await db.plan_search(conn, f, agency)
        rows = None
        if agency is not None and not f.scoped and not f.offset:
            # Common words: the walk of the queue, within its budget.
            rows = await db.walk_tickets(conn, now, replace(f, limit=f.limit + 1), agency)
            if rows is None:  # rarer here than the statistics said
                f = await db.plan_scoped(conn, f)
        if rows is None:
            rows = await db.list_tickets(conn, now, replace(f, limit=f.limit + 1), **where)
        if len(rows) <= f.limit and f.after is None and not f.offset:
            return rows, (len(rows), True)  # one page holds them all: that is the count
        # More than a page: the planner's estimate ("about N"). Counting matches even up
        # to a cap walks the queue until that many contain the words, which for two
        # middling words took 0.35 s at a million rows (bench/desk.py).
        total, _ = await db.count_tickets(conn, now, f, exact_up_to=0, **where)
        return rows, (max(total, min(len(rows), f.limit + 1)), False)


def etag(body: bytes) -> str:
    return f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


async def list_tickets(request: web.Request) -> web.Response:
    """The queue; a conditional GET (If-None-Match) answers 304 when it has not changed,
    and with ``wait`` it is a long-poll: it answers as soon as the agency's queue
    changes (a NOTIFY from the tickets table), or 304 when the wait is over."""
    user = await require_user(request, AGENCY_ROLES)
    query = _query(request)
    filters = query.filters(user, request.app[TRIGRAM])
    known = request.headers.get("If-None-Match")
    known_tags = {t.strip() for t in known.split(",")} if known is not None else set()
    feed, cache = request.app[QUEUE_CHANGES], request.app[QUEUE_TAGS]
    key = user.agency or ""
    clock = asyncio.get_running_loop().time
    deadline = clock() + query.wait
    while True:
        seen = feed.version(key)  # before the read: a change during it is not missed
        tag = cache.get((key, filters), seen, clock())
        if tag is None or tag not in known_tags:
            now = request.app[CLOCK]()
            rows, total = await read_page(request.app[keys.POOL], now, filters,
                                          agency=user.agency)
            body = list_body(rows, now, filters, total)
            tag = etag(body)
            cache.put((key, filters), seen, tag, clock())
            if tag not in known_tags:
                return web.Response(body=body, content_type="application/json",
                                    headers={"ETag": tag, "Cache-Control": "no-store"})
        remaining = deadline - clock()
        if remaining <= 0 or not await feed.wait(key, seen, remaining) or feed.closed:
            return web.Response(status=304, headers={"ETag": tag, "Cache-Control": "no-store"})


async def get_ticket(request: web.Request) -> web.Response:
    user = await require_user(request, AGENCY_ROLES)
    pool = request.app[keys.POOL]
    row = await db.get_for_agency(pool, request.match_info["id"], user.agency)
    body = ticket_json(row, request.app[CLOCK]())
    body["timeline"] = timeline_json(await db.timeline(pool, row["id"]))
    return json_response(body)


def audiences(user: User, catalog: Any) -> tuple[str, ...]:
    """Whose notifications the user reads: a head their agency's breaches; anyone of
    the region's inspectorate its level-2 escalations."""
    out: list[str] = ["head"] if user.role == "head" else []
    agency = catalog.agencies.get(user.agency or "")
    if agency is not None and "inspectorate" in agency.roles:
        out.append("inspectorate")
    return tuple(out)


def notification_json(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "audience": row["audience"], "username": row["username"],
            "level": row["level"],
            "deadline": row["deadline"], "tracking_code": row["tracking_code"],
            "ticket_agency": row["ticket_agency"], "created_at": row["created_at"].isoformat()}


async def list_notifications(request: web.Request) -> web.Response:
    user = await require_user(request, AGENCY_ROLES)
    rows = await db.notifications(request.app[keys.POOL], user.agency,
                                  audiences(user, request.app[CATALOG]), user.username)
    return json_response({"notifications": [notification_json(r) for r in rows],
                          "count": len(rows)})


def transferred_json(row: asyncpg.Record) -> dict[str, Any]:
    """One ticket the caller's agency sent away, read-only: where it went, why, and
    where it stands now (no contact, no conversation)."""
    data = row["data"] or {}
    return {"id": str(row["id"]), "tracking_code": row["tracking_code"],
            "category": row["category"], "title": row["title"], "status": row["status"],
            "agency": row["agency"], "transferred_at": row["transferred_at"].isoformat(),
            "to": data.get("agency") if row["kind"] == "ticket.transferred" else None,
            "returned_to_triage": row["kind"] == "ticket.returned_to_triage",
            "reason": data.get("reason")}


async def list_transferred(request: web.Request) -> web.Response:
    user = await require_user(request, AGENCY_ROLES)
    rows = await db.transferred_by(request.app[keys.POOL], user.agency)
    return json_response({"tickets": [transferred_json(r) for r in rows],
                          "count": len(rows)})


async def bulk(pool: asyncpg.Pool, catalog: Any, user: User, body: BulkBody,
               now: datetime) -> list[dict[str, Any]]:
    """Apply ``body.action`` to each ticket in its own transaction (one failure
    leaves the others done, and itself nothing half-done): per ticket ``ok`` with the
    updated ticket, or the error a single action would have answered."""
    results: list[dict[str, Any]] = []
    for tid in body.ids:
        try:
            async with pool.acquire() as conn, conn.transaction():
                if body.action == "acknowledge":
                    row = await domain.acknowledge(conn, catalog, user, tid, now)
                else:
                    row = await assignment.assign(conn, catalog, user, tid, body.username, now)
        except ApiError as e:
            results.append({"id": tid, "ok": False, "error": {
                "code": e.code, "status": e.status, "message": e.message,
                "details": e.details}})
        else:
            results.append({"id": tid, "ok": True, "ticket": ticket_json(row, now)})
    return results


async def bulk_action(request: web.Request) -> web.Response:
    user = await require_user(request, AGENCY_ROLES)
    body = await parse_json(request, BulkBody)
    results = await bulk(request.app[keys.POOL], request.app[CATALOG], user, body,
                         request.app[CLOCK]())
    ok = sum(1 for r in results if r["ok"])
    return json_response({"results": results, "succeeded": ok, "failed": len(results) - ok})


Page = Callable[[web.Request], Awaitable[web.Response]]
Action = Callable[[asyncpg.Connection, User, str, datetime, Any], Awaitable[asyncpg.Record]]


def _action(name: str, model: type[BaseModel] | None, act: Action,
            roles: tuple[str, ...] = AGENCY_ROLES) -> Page:
    async def handler(request: web.Request) -> web.Response:
        user = await require_user(request, roles)
        body = await parse_json(request, model) if model is not None else None
        now = request.app[CLOCK]()
        async with request.app[keys.POOL].acquire() as conn, conn.transaction():
            row = await act(conn, user, request.match_info["id"], now, body)
        return json_response(ticket_json(row, now))

    handler.__name__ = name
    return handler


def add_routes(app: web.Application) -> None:
    catalog = app[CATALOG]
    api = app[keys.OPENAPI]
    r = app.router
    query_params = [
        {"name": n, "in": "query", "required": False, "schema": s} for n, s in (
            ("status", {"type": "string"}), ("overdue", {"type": "boolean"}),
            ("due_soon", {"type": "boolean"}), ("warned", {"type": "boolean"}),
            ("category", {"type": "string"}),
            ("tracking_code", {"type": "string"}), ("escalated", {"type": "boolean"}),
            ("sort", {"type": "string", "enum": ["created", "-created", "deadline", "support"]}),
            ("assignee", {"type": "string", "pattern": "^[a-z0-9._-]{1,64}$",
                          "description": "me, none, or a username of the agency"}),
            ("q", {"type": "string", "minLength": 1, "maxLength": 200,
                   "description": "Words to search for in code, title and text"
                                  " (all words, each as a prefix)"}),
            ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            ("offset", {"type": "integer", "minimum": 0, "maximum": 10000}),
            ("after", {"type": "string", "minLength": 1, "maxLength": keyset.MAX_TOKEN,
                       "description": "The next token of the previous page"}))
    ]
    long_poll_params = [
        {"name": "wait", "in": "query", "required": False,
         "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S},
         "description": "Seconds to wait for a change when If-None-Match is unchanged"},
        {"name": "If-None-Match", "in": "header", "required": False,
         "schema": {"type": "string"},
         "description": "The ETag of a previous answer: 304 if the list is unchanged"},
    ]
    api.add(r, "GET", "/api/v1/tickets", list_tickets, tags=["tickets"], secured=True,
            summary="The caller's agency's tickets", parameters=query_params + long_poll_params,
            responses={200: TicketList, 304: None}, errors=(422,))
    api.add(r, "GET", "/api/v1/tickets/{id}", get_ticket, tags=["tickets"], secured=True,
            summary="One ticket of the caller's agency, with its timeline",
            responses={200: TicketDetail}, errors=(404,))

    api.add(r, "GET", "/api/v1/notifications", list_notifications, tags=["tickets"],
            secured=True, summary="Escalations for the caller: breaches of their agency"
                                  " (heads), level 2 of the region (the inspectorate)",
            responses={200: {"type": "object"}}, errors=())
    api.add(r, "GET", "/api/v1/transferred", list_transferred, tags=["tickets"],
            secured=True, summary="Read-only: the tickets the caller's agency transferred"
                                  " away, and where each stands now",
            responses={200: {"type": "object"}}, errors=())

    async def ack(conn: asyncpg.Connection, u: User, tid: str, now: datetime, _: Any) -> Any:
        return await domain.acknowledge(conn, catalog, u, tid, now)

    async def ask(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await domain.request_info(conn, catalog, u, tid, b.question, now)

    async def resp(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await domain.respond(conn, catalog, u, tid, b.message, now)

    async def res(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await domain.resolve(conn, catalog, u, tid, b.note, now)

    async def move(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await domain.transfer(conn, catalog, u, tid, b.agency, b.reason, now)

    async def route(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await domain.route_by_hand(conn, catalog, u, tid, b.agency, now)

    async def relocate(conn: asyncpg.Connection, u: User, tid: str, now: datetime,
                       b: Any) -> Any:
        return await domain.move_region(conn, catalog, u, tid, b.region, b.reason, now)

    async def reject(conn: asyncpg.Connection, u: User, tid: str, now: datetime,
                     b: Any) -> Any:
        return await domain.reject_by_hand(conn, catalog, u, tid, b.reason_code, b.reason,
                                           b.duplicate_of, now)

    async def give(conn: asyncpg.Connection, u: User, tid: str, now: datetime, b: Any) -> Any:
        return await assignment.assign(conn, catalog, u, tid, b.username, now)

    actions: list[tuple[str, str, type[BaseModel] | None, Action, str]] = [
        ("assign", "assign_ticket", AssignBody, give,
         "Assign to a member of the agency, or to nobody (heads: anyone of the agency;"
         " staff: take an unassigned ticket, give back their own)"),
        ("acknowledge", "acknowledge_ticket", None, ack, "Acknowledge (starts follow-up)"),
        ("request-info", "request_info", RequestInfoBody, ask,
         "Ask the citizen for information (pauses the clock)"),
        ("respond", "respond_ticket", RespondBody, resp, "Send the citizen a public message"),
        ("resolve", "resolve_ticket", ResolveBody, res, "Resolve, with a resolution note"),
        ("transfer", "transfer_ticket", TransferBody, move,
         "Transfer to another agency of the region, with a reason"),
    ]
    for path, name, model, act, summary in actions:
        api.add(r, "POST", f"/api/v1/tickets/{{id}}/{path}", _action(name, model, act),
                tags=["tickets"], secured=True, summary=summary, body=model,
                responses={200: TicketOut}, errors=(400, 404, 409, 415, 422))

    api.add(r, "POST", "/api/v1/tickets/bulk", bulk_action, tags=["tickets"], secured=True,
            summary="Acknowledge or assign several tickets: each its own action and event;"
                    " the answer says per ticket whether it worked",
            body=BulkBody, responses={200: {"type": "object"}}, errors=(400, 415, 422))

    async def triage_queue(request: web.Request) -> web.Response:
        user = await require_user(request, TRIAGE_ROLES)
        now = request.app[CLOCK]()
        q = _query(request).filters(user, request.app[TRIGRAM])
        rows, total = await read_page(request.app[keys.POOL], now, q, triage=True,
                                      triage_region=user.region)
        return json_response(page_json(rows, now, q, total))

    api.add(r, "GET", "/api/v1/triage", triage_queue, tags=["triage"], secured=True,
            summary="The triage queue (the officer's region)", parameters=query_params,
            responses={200: TicketList}, errors=(422,))
    api.add(r, "POST", "/api/v1/triage/{id}/route",
            _action("route_ticket", RouteBody, route, TRIAGE_ROLES), tags=["triage"],
            secured=True, summary="Route a triage ticket to an agency of its region",
            body=RouteBody, responses={200: TicketOut}, errors=(400, 404, 409, 415, 422))
    api.add(r, "POST", "/api/v1/triage/{id}/move-region",
            _action("move_ticket_region", MoveRegionBody, relocate, TRIAGE_ROLES),
            tags=["triage"], secured=True,
            summary="Wrong city: move a triage ticket to another region's triage queue",
            body=MoveRegionBody, responses={200: TicketOut}, errors=(400, 404, 409, 415, 422))
    api.add(r, "POST", "/api/v1/triage/{id}/reject",
            _action("reject_ticket", RejectBody, reject, TRIAGE_ROLES), tags=["triage"],
            secured=True, summary="Reject a triage ticket (not a complaint, spam, duplicate)"
                                  " with a reason the citizen reads",
            body=RejectBody, responses={200: TicketOut}, errors=(400, 404, 409, 415, 422))
