"""The panel's work: the review queue, claims, case timelines, reopening (findings
under the two-person rule: services/oversight/findings.py).

Used by the JSON API (handlers.py) and the console pages (pages.py) alike. Nothing
here changes an agency's ticket: reopening only emits ``case.reopened``, which the
router turns into a reopened ticket. Every produced event goes through the outbox in
the transaction of the state change, under the case row lock (so one case's events
keep their order on the topic).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from awasi import lifecycle
from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    CaseClaimed,
    CaseClosed,
    CaseReopened,
    ClaimReleased,
    FindingOutcome,
    MaladministrationType,
)
from awasi.web.errors import Conflict, NotFound
from services.oversight import chain, conflicts
from services.oversight.domain import next_seq

PRODUCER = "oversight"


class FindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    outcome: FindingOutcome
    maladministration_type: MaladministrationType | None = None
    recommendation: str = Field(min_length=1, max_length=4000)
    published: bool = False

    @model_validator(mode="after")
    def _type_only_for_maladministration(self) -> FindingIn:
        if self.outcome == "maladministration" and self.maladministration_type is None:
            raise ValueError("maladministration_type is required when the outcome is"
                             " maladministration")
        if self.outcome != "maladministration" and self.maladministration_type is not None:
            raise ValueError("maladministration_type is only for the outcome"
                             " maladministration")
        return self


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(min_length=1, max_length=2000)


class RejectDisputeIn(BaseModel):
    """Why the panel finds the resolution stands: the citizen reads this."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(min_length=1, max_length=2000)


async def case_by_code(conn: asyncpg.Connection, tracking_code: str,
                       lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM oversight.cases WHERE tracking_code = $1"
        + (" FOR UPDATE" if lock else ""), tracking_code,
    )
    if row is None:
        raise NotFound("No case with this tracking code")
    return row


async def lock_case_by_code(conn: asyncpg.Connection, tracking_code: str) -> asyncpg.Record:
    """The case, locked, after its chain partition's head (the consumer's lock order:
    chain.lock_head says why). ``NotFound`` if there is no such case."""
    await chain.lock_head(conn, (await case_by_code(conn, tracking_code))["complaint_id"])
    return await case_by_code(conn, tracking_code, lock=True)


async def emit(conn: asyncpg.Connection, env: Envelope, actor: str) -> None:
    """Put the panel's event in the outbox and record who acted, in the caller's
    transaction. The consumer puts ``actor`` on the audit chain with the event (inside
    the hashed content); the topic itself carries no staff name."""
    await conn.execute(
        "INSERT INTO oversight.panel_actions (event_id, actor) VALUES ($1, $2)",
        env.event_id, actor)
    await add_to_outbox(conn, "oversight", topics.OVERSIGHT, env)


def _age(now: datetime, since: datetime) -> float:
    return round(max(0.0, (now - since).total_seconds()), 1)


_CODE = r"^[A-Za-z0-9._-]+$"


class QueueFilter(BaseModel):
    """The queue's filters: a reason, region or agency code, a minimum age in days,
    a tracking-code prefix (case-insensitive); keyset pages of ``limit`` cases, oldest
    first, continuing ``after`` (the ``next`` cursor of the previous page)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Codes only (no NUL, no wildcard games): the values go into SQL parameters.
    reason: str | None = Field(default=None, max_length=32, pattern=_CODE)
    region: str | None = Field(default=None, max_length=64, pattern=_CODE)
    agency: str | None = Field(default=None, max_length=64, pattern=_CODE)
    min_age_days: float | None = Field(default=None, ge=0, le=3650)
    code: str | None = Field(default=None, max_length=32, pattern=_CODE)
    after: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")
    limit: int = Field(default=100, ge=1, le=500)

    def cursor(self) -> tuple[datetime, str] | None:
        """The decoded ``after``; ``None`` without one. Raises ``ValueError`` for a
        cursor this server did not make."""
        if self.after is None:
            return None
        since, sep, cid = base64.urlsafe_b64decode(self.after.encode()).decode().partition("|")
        if not sep or not cid:
            raise ValueError("bad cursor")
        return datetime.fromisoformat(since), cid


def _prefix_range(code: str) -> tuple[str, str]:
    """The codes starting with ``code`` (case-insensitive) as a half-open range of
    upper-case strings in byte order. ``code`` is ASCII letters, digits and ``._-``
    (QueueFilter's pattern), so its last character has a successor."""
    low = code.upper()
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def queue_cursor(item: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(
        f"{item['since']}|{item['complaint_id']}".encode()).decode()


async def review_queue(conn: asyncpg.Connection, now: datetime,
                       f: QueueFilter | None = None) -> list[dict[str, Any]]:
    """Open cases in the queue, oldest first, each with its reasons and their ages,
    who is recused from it and the draft waiting on it; filtered and paged by ``f``
    (all of them without). Raises ``ValueError`` for a malformed cursor."""
    rows = await conn.fetch(*queue_statement(now, f or QueueFilter(limit=500)))
    return [_queue_item(now, row) for row in rows]


def queue_statement(now: datetime, f: QueueFilter) -> tuple[Any, ...]:
    """The queue page's SQL and its parameters (bench/panel_queue.py explains it)."""
    cursor = f.cursor()
    # The page first, then what the page shows for its cases alone: the recusals,
    # the draft and the reasons are looked up per case of the page, not per open case.
    # A case's place in the queue is its oldest open item, so the page walks the open
    # items oldest first (their partial index) and keeps an item only if no older open
    # item of the same case exists (an index probe per item): a page of 100 reads about
    # 100 items. Grouping every open item by case instead cost about 54 ms of database
    # CPU a page with 680,000 open items (docs/BENCHMARKS.md).
    # Region and agency are on the review item (kept equal to its case's by the
    # database: migration 1200), so a filtered page walks only that region's or
    # agency's open items. Only the filters asked for go into the SQL (fixed
    # fragments, values as parameters): a prepared statement of "$1 IS NULL OR region
    # = $1" would be planned once for every combination. (An absent filter still
    # names its parameter, as a constant the plan evaluates once, so every statement
    # takes the same parameters with known types.)
    where = ["r.closed_at IS NULL",
             "r.region = $1" if f.region is not None else "$1::text IS NULL",
             "r.agency = $2" if f.agency is not None else "$2::text IS NULL",
             # The code prefix as a range on the cases' index (migration 1210): the
             # few matching cases first, then their open items.
             "r.complaint_id IN (SELECT c.complaint_id FROM oversight.cases c"
             " WHERE upper(c.tracking_code) COLLATE \"C\" >= $3"
             " AND upper(c.tracking_code) COLLATE \"C\" < $9)"
             if f.code is not None else "$3::text IS NULL AND $9::text IS NULL",
             # Any open item of the case with this reason.
             "EXISTS (SELECT 1 FROM oversight.review_items x WHERE x.complaint_id ="
             " r.complaint_id AND x.closed_at IS NULL AND x.reason = $4)"
             if f.reason is not None else "$4::text IS NULL",
             "r.created_at <= $5" if f.min_age_days is not None else "$5::timestamptz IS NULL",
             "(r.created_at, r.complaint_id) > ($6, $7)" if cursor is not None
             else "$6::timestamptz IS NULL AND $7::text IS NULL",
             # The case's oldest open item (ties: the first inserted).
             "NOT EXISTS (SELECT 1 FROM oversight.review_items e WHERE e.complaint_id ="
             " r.complaint_id AND e.closed_at IS NULL"
             " AND (e.created_at, e.id) < (r.created_at, r.id))"]
    low, high = _prefix_range(f.code) if f.code is not None else (None, None)
    return (
        "WITH page AS ("
        " SELECT r.complaint_id, r.created_at AS since"
        " FROM oversight.review_items r WHERE " + " AND ".join(where) +
        " ORDER BY r.created_at, r.complaint_id LIMIT $8)"
        " SELECT c.complaint_id, c.tracking_code, c.agency, c.region, c.category, c.status,"
        " cl.claimed_by, cl.claimed_at, page.since,"
        " (SELECT json_agg(json_build_object('username', pc.username, 'reason', pc.reason)"
        "   ORDER BY pc.username) FROM oversight.panel_conflicts pc"
        "   WHERE pc.agency = c.agency) AS recused,"
        " (SELECT json_build_object('id', fp.id, 'proposed_by', fp.proposed_by)"
        "   FROM oversight.finding_proposals fp WHERE fp.complaint_id = c.complaint_id"
        "   AND fp.status = 'pending' AND fp.kind = 'record') AS draft,"
        " (SELECT json_agg(json_build_object('reason', r.reason, 'since', r.created_at,"
        "   'detail', r.detail) ORDER BY r.created_at, r.id) FROM oversight.review_items r"
        "   WHERE r.complaint_id = c.complaint_id AND r.closed_at IS NULL) AS reasons"
        " FROM page JOIN oversight.cases c USING (complaint_id)"
        " LEFT JOIN oversight.claims cl USING (complaint_id)"
        " ORDER BY page.since, c.complaint_id",
        f.region, f.agency, low, f.reason,
        now - timedelta(days=f.min_age_days) if f.min_age_days is not None else None,
        cursor[0] if cursor else None, cursor[1] if cursor else None, f.limit, high,
    )


def _queue_item(now: datetime, row: asyncpg.Record) -> dict[str, Any]:
    reasons = [
        {"reason": r["reason"], "since": r["since"],
         "age_seconds": _age(now, datetime.fromisoformat(r["since"])),
         "detail": r["detail"]}
        for r in row["reasons"]
    ]
    return {
        "tracking_code": row["tracking_code"], "complaint_id": row["complaint_id"],
        "agency": row["agency"], "region": row["region"], "category": row["category"],
        "status": row["status"], "reason": reasons[0]["reason"], "reasons": reasons,
        "since": row["since"].isoformat(), "age_seconds": _age(now, row["since"]),
        "claimed_by": row["claimed_by"],
        "claimed_at": row["claimed_at"].isoformat() if row["claimed_at"] else None,
        # Members with a declared conflict with the case's agency, and why.
        "recused": row["recused"] or [],
        # A draft finding waiting for a second member's confirmation.
        "draft": row["draft"],
    }


async def claim(pool: asyncpg.Pool, tracking_code: str, username: str,
                now: datetime) -> dict[str, Any]:
    """Claim a queued case for ``username``. NotFound if it is not in the queue;
    Conflict if another member holds it; Forbidden (``conflict_of_interest``) if the
    member declared a conflict with the case's agency."""
    async with pool.acquire() as conn, conn.transaction():
        case = await case_by_code(conn, tracking_code, lock=True)
        queued = await conn.fetchval(
            "SELECT count(*) FROM oversight.review_items"
            " WHERE complaint_id = $1 AND closed_at IS NULL", case["complaint_id"])
        if not queued:
            raise NotFound("This case is not in the review queue")
        await conflicts.check(conn, username, case["agency"])
        holder = await conn.fetchrow(
            "SELECT claimed_by, claimed_at FROM oversight.claims WHERE complaint_id = $1",
            case["complaint_id"])
        if holder is not None and holder["claimed_by"] != username:
            raise Conflict(f"Already claimed by {holder['claimed_by']}",
                           details={"claimed_by": holder["claimed_by"]})
        if holder is None:
            await conn.execute(
                "INSERT INTO oversight.claims (complaint_id, claimed_by, claimed_at)"
                " VALUES ($1, $2, $3)", case["complaint_id"], username, now)
            await emit(conn, Envelope.build(CaseClaimed(), complaint_id=case["complaint_id"],
                                            producer=PRODUCER, occurred_at=now), username)
            claimed_at = now
        else:
            claimed_at = holder["claimed_at"]
    return {"tracking_code": tracking_code, "claimed_by": username,
            "claimed_at": claimed_at.isoformat()}


async def release(pool: asyncpg.Pool, tracking_code: str, username: str,
                  now: datetime) -> dict[str, Any]:
    """Give back one's own claim. NotFound if the case is not claimed; Conflict
    (``not_claim_holder``) if another member holds it."""
    async with pool.acquire() as conn, conn.transaction():
        case = await lock_case_by_code(conn, tracking_code)
        holder = await conn.fetchval(
            "SELECT claimed_by FROM oversight.claims WHERE complaint_id = $1",
            case["complaint_id"])
        if holder is None:
            raise NotFound("This case is not claimed")
        if holder != username:
            raise Conflict(f"Claimed by {holder}", code="not_claim_holder",
                           details={"claimed_by": holder})
        await conn.execute("DELETE FROM oversight.claims WHERE complaint_id = $1",
                           case["complaint_id"])
        await chain.append(conn, Envelope.build(
            ClaimReleased(), complaint_id=case["complaint_id"], producer=PRODUCER,
            occurred_at=now), recorded_at=now, actor=username)
    return {"tracking_code": tracking_code, "claimed_by": None}


def _entry(row: asyncpg.Record) -> dict[str, Any]:
    return {"seq": row["seq"], "event_id": str(row["event_id"]), "type": row["event_type"],
            "producer": row["producer"], "occurred_at": row["occurred_at"].isoformat(),
            "recorded_at": row["recorded_at"].isoformat(), "payload": row["payload"],
            "actor": row["actor"], "hash": row["hash"]}


async def timeline(conn: asyncpg.Connection, tracking_code: str,
                   now: datetime) -> dict[str, Any]:
    case = await case_by_code(conn, tracking_code)
    cid = case["complaint_id"]
    entries = await conn.fetch(
        "SELECT * FROM oversight.timeline WHERE complaint_id = $1 ORDER BY seq", cid)
    findings = await conn.fetch(
        "SELECT * FROM oversight.findings WHERE complaint_id = $1 ORDER BY id", cid)
    items = await conn.fetch(
        "SELECT reason, created_at, closed_at, detail FROM oversight.review_items"
        " WHERE complaint_id = $1 ORDER BY created_at, id", cid)
    claim_row = await conn.fetchrow(
        "SELECT claimed_by, claimed_at FROM oversight.claims WHERE complaint_id = $1", cid)
    proposals = await conn.fetch(
        "SELECT * FROM oversight.finding_proposals WHERE complaint_id = $1 ORDER BY id", cid)
    recused = await conn.fetch(
        "SELECT username, reason FROM oversight.panel_conflicts WHERE agency = $1"
        " ORDER BY username", case["agency"])
    pending = await conn.fetch(
        "SELECT kind, step, due_at, fire_at, agency FROM oversight.deadlines"
        " WHERE complaint_id = $1 AND status = 'pending' ORDER BY fire_at", cid)

    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "tracking_code": tracking_code, "complaint_id": cid,
        "case": {"status": case["status"], "region": case["region"],
                 "category": case["category"], "agency": case["agency"],
                 "submitted_at": iso(case["submitted_at"]),
                 "acknowledge_by": iso(case["acknowledge_by"]),
                 "resolve_by": iso(case["resolve_by"]), "triage_by": iso(case["triage_by"]),
                 "resolution_disputed": case["resolution_disputed"],
                 "rating": case["rating"]},
        "entries": [_entry(e) for e in entries],
        "pending_deadlines": [
            {"kind": p["kind"], "step": p["step"], "due_at": p["due_at"].isoformat(),
             "fire_at": p["fire_at"].isoformat(), "agency": p["agency"]} for p in pending],
        "review": [{"reason": i["reason"], "since": i["created_at"].isoformat(),
                    "age_seconds": _age(now, i["created_at"]),
                    "open": i["closed_at"] is None, "detail": i["detail"]} for i in items],
        "claimed_by": claim_row["claimed_by"] if claim_row else None,
        "findings": [finding_json(f) for f in findings],
        "proposals": [proposal_json(p) for p in proposals],
        "recused": [{"username": r["username"], "reason": r["reason"]} for r in recused],
    }


def finding_json(f: asyncpg.Record) -> dict[str, Any]:
    return {"id": f["id"], "event_id": str(f["event_id"]), "outcome": f["outcome"],
            "maladministration_type": f["maladministration_type"],
            "recommendation": f["recommendation"], "published": f["published"],
            "recorded_by": f["recorded_by"], "confirmed_by": f["confirmed_by"],
            "recorded_at": f["recorded_at"].isoformat(), "agency": f["agency"]}


def proposal_json(p: asyncpg.Record, tracking_code: str | None = None) -> dict[str, Any]:
    """A finding proposal (a draft, an amendment or a withdrawal) as the API shows it."""
    out = {"id": p["id"], "kind": p["kind"], "finding_id": p["finding_id"],
            "status": "draft" if p["status"] == "pending" else p["status"],
            "outcome": p["outcome"], "maladministration_type": p["maladministration_type"],
            "recommendation": p["recommendation"], "published": p["published"],
            "reason": p["reason"], "proposed_by": p["proposed_by"],
            "proposed_at": p["proposed_at"].isoformat(), "decided_by": p["decided_by"],
            "decided_at": p["decided_at"].isoformat() if p["decided_at"] else None}
    if tracking_code is not None:
        out["tracking_code"] = tracking_code
    return out


async def reopen(pool: asyncpg.Pool, tracking_code: str, body: ReopenIn, username: str,
                 now: datetime) -> dict[str, Any]:
    """Emit ``case.reopened`` (the router reopens the ticket with new deadlines).
    Conflict if the case has no agency to reopen it at yet, or if the lifecycle does
    not let a case in its status be reopened (only ``resolved`` and ``closed``)."""
    async with pool.acquire() as conn, conn.transaction():
        case = await case_by_code(conn, tracking_code, lock=True)
        if case["agency"] is None:
            raise Conflict("The case has not reached an agency yet; nothing to reopen")
        if (case["status"], "case.reopened") not in lifecycle.TRANSITIONS:
            raise Conflict(f"A case that is {case['status']} cannot be reopened")
        env = Envelope.build(CaseReopened(reason=body.reason),
                             complaint_id=case["complaint_id"], producer=PRODUCER,
                             occurred_at=now, seq=await next_seq(conn, case["complaint_id"]))
        await emit(conn, env, username)
    return {"tracking_code": tracking_code, "event_id": str(env.event_id),
            "reopened_by": username, "reason": body.reason}


async def reject_dispute(pool: asyncpg.Pool, tracking_code: str, body: RejectDisputeIn,
                         username: str, now: datetime) -> dict[str, Any]:
    """The panel finds the disputed resolution stands: emit ``case.closed`` (reason
    ``dispute_rejected``, ``note`` the reason the citizen sees), which closes the
    case everywhere, and take it out of the review queue. (Upholding a dispute is a
    finding: ``findings.draft``, confirmed by a second member.) Conflict if the case
    has no open dispute or is not in a status the lifecycle closes this way; another
    member's claim too; Forbidden for a member recused from the case's agency."""
    async with pool.acquire() as conn, conn.transaction():
        case = await case_by_code(conn, tracking_code, lock=True)
        cid = case["complaint_id"]
        await conflicts.check(conn, username, case["agency"])
        if not case["resolution_disputed"]:
            raise Conflict("The case has no open dispute")
        if (case["status"], "case.dispute_rejected") not in lifecycle.TRANSITIONS:
            raise Conflict(f"A case that is {case['status']} cannot be closed")
        holder = await conn.fetchval(
            "SELECT claimed_by FROM oversight.claims WHERE complaint_id = $1", cid)
        if holder is not None and holder != username:
            raise Conflict(f"Claimed by {holder}", details={"claimed_by": holder})
        env = Envelope.build(CaseClosed(reason="dispute_rejected", note=body.reason),
                             complaint_id=cid, producer=PRODUCER, occurred_at=now,
                             seq=await next_seq(conn, cid))
        await conn.execute(
            "UPDATE oversight.review_items SET closed_at = $2"
            " WHERE complaint_id = $1 AND closed_at IS NULL", cid, now)
        await conn.execute("DELETE FROM oversight.claims WHERE complaint_id = $1", cid)
        await emit(conn, env, username)
    return {"tracking_code": tracking_code, "event_id": str(env.event_id),
            "closed_by": username, "reason": body.reason}
