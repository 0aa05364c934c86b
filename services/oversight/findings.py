"""Findings under the two-person rule.

One member proposes, another confirms: a new finding is a draft (a proposal of kind
``record``) until a second panel member confirms it, and only then is it a row of
``oversight.findings`` (with the draft's id), published on the topic as
``finding.recorded`` and counted anywhere. Amending or withdrawing a confirmed
finding is likewise a proposal that another member confirms; the replaced version
is kept in ``finding_versions``. Nobody confirms their own proposal, nor anything on
a case of an agency they declared a conflict with (``conflicts.check``).

Every proposal and every confirmation is an entry on the audit hash chain
(``chain.append``) with the member's username as its actor. These panel-internal
events never go on a topic: agencies and citizens learn of a finding only once it
is confirmed (``finding.recorded`` through the outbox, as before).

Locking: each transaction here takes the chain head's row lock first, then the
case's. The consumer appends to the chain (head lock) before it locks the case, so
taking them in the same order means neither waits on the other in a cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from awasi.events.envelope import Envelope
from awasi.events.payloads import (
    FindingConfirmed,
    FindingProposed,
    FindingRecorded,
    Payload,
    ProposalKind,
)
from awasi.web.errors import Conflict, Forbidden, NotFound
from services.oversight import chain, conflicts
from services.oversight.domain import next_seq
from services.oversight.panel import (
    PRODUCER,
    FindingIn,
    emit,
    finding_json,
    lock_case_by_code,
    proposal_json,
)


class ChangeIn(BaseModel):
    """An amendment: the whole new version and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    finding: FindingIn
    reason: str = Field(min_length=3, max_length=2000)


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(min_length=3, max_length=2000)


async def _on_chain(conn: asyncpg.Connection, payload: Payload, complaint_id: str,
                    actor: str, now: datetime) -> None:
    env = Envelope.build(payload, complaint_id=complaint_id, producer=PRODUCER,
                         occurred_at=now)
    await chain.append(conn, env, recorded_at=now, actor=actor)


async def _propose(conn: asyncpg.Connection, case: asyncpg.Record, kind: ProposalKind,
                   finding_id: int | None, body: FindingIn | None, reason: str | None,
                   username: str, now: datetime) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            "INSERT INTO oversight.finding_proposals (complaint_id, kind, finding_id,"
            " outcome, maladministration_type, recommendation, published, reason,"
            " proposed_by, proposed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " RETURNING *",
            case["complaint_id"], kind, finding_id,
            body.outcome if body else None, body.maladministration_type if body else None,
            body.recommendation if body else None, body.published if body else None,
            reason, username, now)
    except asyncpg.UniqueViolationError as e:
        raise Conflict("A proposal for this is already waiting for confirmation",
                       code="proposal_pending") from e
    await _on_chain(conn, FindingProposed(
        proposal_id=row["id"], kind=kind, finding_id=finding_id,
        outcome=body.outcome if body else None,
        maladministration_type=body.maladministration_type if body else None,
        recommendation=body.recommendation if body else None,
        published=body.published if body else None, reason=reason),
        case["complaint_id"], username, now)
    return row


async def draft(pool: asyncpg.Pool, tracking_code: str, body: FindingIn, username: str,
                now: datetime) -> dict[str, Any]:
    """Record a draft finding on a case. ``Conflict`` if another member has claimed
    the case or a draft is already waiting there; ``Forbidden``
    (``conflict_of_interest``) if the member declared a conflict with its agency."""
    async with pool.acquire() as conn, conn.transaction():
        case = await lock_case_by_code(conn, tracking_code)
        await conflicts.check(conn, username, case["agency"])
        holder = await conn.fetchval(
            "SELECT claimed_by FROM oversight.claims WHERE complaint_id = $1",
            case["complaint_id"])
        if holder is not None and holder != username:
            raise Conflict(f"Claimed by {holder}", details={"claimed_by": holder})
        row = await _propose(conn, case, "record", None, body, None, username, now)
    return proposal_json(row, tracking_code)


async def _finding_case(conn: asyncpg.Connection, finding_id: int) -> asyncpg.Record:
    complaint_id = await conn.fetchval(
        "SELECT complaint_id FROM oversight.findings WHERE id = $1", finding_id)
    if complaint_id is None:
        raise NotFound("No such finding (never confirmed, or withdrawn)")
    await chain.lock_head(conn, complaint_id)  # before the case, as the consumer does
    case = await conn.fetchrow(
        "SELECT * FROM oversight.cases WHERE complaint_id = $1 FOR UPDATE", complaint_id)
    assert case is not None
    return case


async def propose_change(pool: asyncpg.Pool, finding_id: int, kind: Literal["amend", "withdraw"],
                         body: FindingIn | None, reason: str, username: str,
                         now: datetime) -> dict[str, Any]:
    """Propose to amend (with the whole new version) or withdraw a confirmed finding.
    ``NotFound``, ``Conflict`` (``proposal_pending``), ``Forbidden``
    (``conflict_of_interest``)."""
    async with pool.acquire() as conn, conn.transaction():
        case = await _finding_case(conn, finding_id)
        await conflicts.check(conn, username, case["agency"])
        row = await _propose(conn, case, kind, finding_id, body, reason, username, now)
    return proposal_json(row, case["tracking_code"])


async def confirm(pool: asyncpg.Pool, proposal_id: int, username: str,
                  now: datetime) -> dict[str, Any]:
    """Confirm a pending proposal; it takes effect. ``NotFound`` if there is no such
    proposal; ``Forbidden`` with code ``own_proposal`` for its author and
    ``conflict_of_interest`` for a member with a declared conflict; ``Conflict``
    (``not_pending``) if it was confirmed or cancelled already."""
    async with pool.acquire() as conn, conn.transaction():
        cid = await conn.fetchval(
            "SELECT complaint_id FROM oversight.finding_proposals WHERE id = $1", proposal_id)
        if cid is None:
            raise NotFound("No such finding or proposal")
        await chain.lock_head(conn, cid)  # before the case, as the consumer does
        case = await conn.fetchrow(
            "SELECT * FROM oversight.cases WHERE complaint_id = $1 FOR UPDATE", cid)
        p = await conn.fetchrow(
            "SELECT * FROM oversight.finding_proposals WHERE id = $1 FOR UPDATE", proposal_id)
        if p["status"] != "pending":
            raise Conflict(f"This proposal is {p['status']} already", code="not_pending",
                           details={"status": p["status"], "decided_by": p["decided_by"]})
        if p["proposed_by"] == username:
            raise Forbidden("A second panel member must confirm this; not its author",
                            code="own_proposal", details={"proposed_by": username})
        await conflicts.check(conn, username, case["agency"])
        finding_id = await _apply(conn, case, p, username, now)
        p = await conn.fetchrow(
            "UPDATE oversight.finding_proposals SET status = 'confirmed', decided_by = $2,"
            " decided_at = $3, finding_id = $4 WHERE id = $1 RETURNING *",
            proposal_id, username, now, finding_id)
        await _on_chain(conn, FindingConfirmed(proposal_id=proposal_id, kind=p["kind"],
                                               finding_id=finding_id), cid, username, now)
        finding = await conn.fetchrow("SELECT * FROM oversight.findings WHERE id = $1",
                                      finding_id)
    out = proposal_json(p, case["tracking_code"])
    out["finding"] = finding_json(finding) if finding else None
    return out


async def cancel(pool: asyncpg.Pool, proposal_id: int, username: str,
                 now: datetime) -> dict[str, Any]:
    """The author takes back their own pending proposal (``Forbidden`` for anyone
    else, ``Conflict`` if it is no longer pending)."""
    async with pool.acquire() as conn, conn.transaction():
        p = await conn.fetchrow(
            "SELECT * FROM oversight.finding_proposals WHERE id = $1 FOR UPDATE", proposal_id)
        if p is None:
            raise NotFound("No such finding or proposal")
        if p["proposed_by"] != username:
            raise Forbidden("Only its author can take back a proposal", code="not_author")
        if p["status"] != "pending":
            raise Conflict(f"This proposal is {p['status']} already", code="not_pending")
        p = await conn.fetchrow(
            "UPDATE oversight.finding_proposals SET status = 'cancelled', decided_by = $2,"
            " decided_at = $3 WHERE id = $1 RETURNING *", proposal_id, username, now)
    return proposal_json(p)


async def _keep_version(conn: asyncpg.Connection, finding_id: int, proposal_id: int,
                        now: datetime) -> None:
    await conn.execute(
        "INSERT INTO oversight.finding_versions (finding_id, complaint_id, agency, region,"
        " outcome, maladministration_type, recommendation, published, recorded_by,"
        " recorded_at, confirmed_by, replaced_at, replaced_by_proposal)"
        " SELECT id, complaint_id, agency, region, outcome, maladministration_type,"
        " recommendation, published, recorded_by, recorded_at, confirmed_by, $2, $3"
        " FROM oversight.findings WHERE id = $1", finding_id, now, proposal_id)


async def _apply(conn: asyncpg.Connection, case: asyncpg.Record, p: asyncpg.Record,
                 confirmer: str, now: datetime) -> int:
    cid = case["complaint_id"]
    if p["kind"] == "record":
        env = Envelope.build(
            FindingRecorded(outcome=p["outcome"],
                            maladministration_type=p["maladministration_type"],
                            recommendation=p["recommendation"], published=p["published"]),
            complaint_id=cid, producer=PRODUCER, occurred_at=now,
            seq=await next_seq(conn, cid))  # the lifecycle's ordering (awasi/lifecycle.py)
        await conn.execute(
            "INSERT INTO oversight.findings (id, complaint_id, event_id, agency, region,"
            " outcome, maladministration_type, recommendation, published, recorded_by,"
            " recorded_at, confirmed_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            p["id"], cid, env.event_id, case["agency"], case["region"], p["outcome"],
            p["maladministration_type"], p["recommendation"], p["published"],
            p["proposed_by"], now, confirmer)
        # The case leaves the queue only now: a draft alone settles nothing.
        await conn.execute(
            "UPDATE oversight.review_items SET closed_at = $2"
            " WHERE complaint_id = $1 AND closed_at IS NULL", cid, now)
        await conn.execute("DELETE FROM oversight.claims WHERE complaint_id = $1", cid)
        # finding.recorded's chain entry names the author (as before the rule); the
        # confirmer is on this transaction's finding.confirmed entry.
        await emit(conn, env, p["proposed_by"])
        return int(p["id"])
    finding_id = int(p["finding_id"])
    if await conn.fetchval("SELECT 1 FROM oversight.findings WHERE id = $1", finding_id) is None:
        raise Conflict("The finding was withdrawn meanwhile", code="not_pending")
    await _keep_version(conn, finding_id, p["id"], now)
    if p["kind"] == "amend":
        await conn.execute(
            "UPDATE oversight.findings SET outcome = $2, maladministration_type = $3,"
            " recommendation = $4, published = $5, recorded_by = $6, recorded_at = $7,"
            " confirmed_by = $8 WHERE id = $1",
            finding_id, p["outcome"], p["maladministration_type"], p["recommendation"],
            p["published"], p["proposed_by"], now, confirmer)
    else:
        # Withdrawn: gone from every count and page; the versions table keeps it.
        await conn.execute("DELETE FROM oversight.findings WHERE id = $1", finding_id)
    return finding_id


async def pending(conn: asyncpg.Connection | asyncpg.Pool,
                  complaint_id: str | None = None) -> list[dict[str, Any]]:
    """Proposals waiting for a second member, oldest first (one case's, or all)."""
    rows = await conn.fetch(
        "SELECT p.*, c.tracking_code, c.agency FROM oversight.finding_proposals p"
        " JOIN oversight.cases c USING (complaint_id) WHERE p.status = 'pending'"
        " AND ($1::text IS NULL OR p.complaint_id = $1) ORDER BY p.proposed_at, p.id",
        complaint_id)
    return [proposal_json(r, r["tracking_code"]) | {"agency": r["agency"]} for r in rows]


async def history(conn: asyncpg.Connection | asyncpg.Pool,
                  finding_id: int) -> dict[str, Any]:
    """A finding's proposals (every one, with who decided) and replaced versions.
    ``NotFound`` if no proposal ever named it."""
    proposals = await conn.fetch(
        "SELECT * FROM oversight.finding_proposals WHERE id = $1 OR finding_id = $1"
        " ORDER BY id", finding_id)
    if not proposals:
        raise NotFound("No such finding")
    versions = await conn.fetch(
        "SELECT * FROM oversight.finding_versions WHERE finding_id = $1 ORDER BY id",
        finding_id)
    current = await conn.fetchrow("SELECT * FROM oversight.findings WHERE id = $1",
                                  finding_id)
    return {
        "finding_id": finding_id,
        "current": finding_json(current) if current else None,
        "withdrawn": current is None and any(
            p["kind"] == "withdraw" and p["status"] == "confirmed" for p in proposals),
        "proposals": [proposal_json(p) for p in proposals],
        "replaced_versions": [{
            "outcome": v["outcome"], "maladministration_type": v["maladministration_type"],
            "recommendation": v["recommendation"], "published": v["published"],
            "recorded_by": v["recorded_by"], "confirmed_by": v["confirmed_by"],
            "recorded_at": v["recorded_at"].isoformat(),
            "replaced_at": v["replaced_at"].isoformat(),
            "replaced_by_proposal": v["replaced_by_proposal"]} for v in versions],
    }
