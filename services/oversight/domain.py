"""The case state machine: every consumed event goes on the timeline and updates the
case, its pending deadlines and the panel's review queue, in the consumer's
transaction (so a redelivered event, skipped by the idempotent consumer, changes
nothing twice).

Lock order, to stay free of deadlocks with the scheduler: the consumer takes the
chain head, then the case row, then deadline rows; the scheduler takes deadline rows
(SKIP LOCKED) and then the case row with SKIP LOCKED, so it never waits on a case
the consumer holds.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from awasi import lifecycle, tracing
from awasi.catalog import Catalog, Policy
from awasi.events.envelope import Envelope
from awasi.workdays import WorkCalendar
from services.oversight import chain, rollups
from services.oversight.clock import Clock

log = logging.getLogger(__name__)

KINDS = ("triage", "acknowledge", "resolve")
DEADLINE_FIELD = {"triage": "triage_by", "acknowledge": "acknowledge_by",
                  "resolve": "resolve_by"}


@dataclass(frozen=True)
class Context:
    catalog: Catalog
    clock: Clock


def calendar_of(catalog: Catalog, region: str | None) -> WorkCalendar | None:
    if region is None:
        return None
    r = catalog.regions.get(region)
    return r.calendar if r is not None else None


def policy_of(catalog: Catalog, region: str | None, agency: str | None,
              category: str | None) -> Policy:
    """The policy in force; the national defaults when the catalog does not know the codes."""
    if region is not None and region in catalog.regions:
        try:
            return catalog.policy(region, agency if agency in catalog.agencies else None,
                                  category if category in catalog.categories else None)
        except LookupError:
            pass
    return Policy()


def audit_sampled(complaint_id: str, share: float) -> bool:
    """Whether a resolved case falls in the random audit sample.

    The draw is a hash of the complaint id: uniform over cases, unpredictable to an
    agency, and the same on a redelivery or in a second oversight process.
    """
    draw = int.from_bytes(hashlib.sha256(f"audit:{complaint_id}".encode()).digest()[:8], "big")
    return draw / 2**64 < share


async def lock_case(conn: asyncpg.Connection, complaint_id: str) -> asyncpg.Record:
    await conn.execute(
        "INSERT INTO oversight.cases (complaint_id) VALUES ($1) ON CONFLICT DO NOTHING",
        complaint_id,
    )
    row = await conn.fetchrow(
        "SELECT * FROM oversight.cases WHERE complaint_id = $1 FOR UPDATE", complaint_id
    )
    assert row is not None
    return row


async def cancel(conn: asyncpg.Connection, complaint_id: str, kinds: tuple[str, ...]) -> None:
    await conn.execute(
        "UPDATE oversight.deadlines SET status = 'cancelled'"
        " WHERE complaint_id = $1 AND status = 'pending' AND kind = ANY($2::text[])",
        complaint_id, list(kinds),
    )


async def schedule(
    conn: asyncpg.Connection, ctx: Context, case: dict[str, Any], kind: str,
    due: datetime | None, start: datetime, share: float | None = None,
) -> None:
    """Make ``due`` the pending deadline of clock ``kind`` for the case's agency.

    A deadline already scheduled (or already breached) for the same instant and
    agency is left alone, so repeating a deadline never restarts its ladder;
    anything else pending for that clock is cancelled and replaced by a warning (at
    the policy's share of the working time from ``start``) and a breach at ``due``.
    """
    agency = case.get("agency")
    if due is not None:
        same = await conn.fetchval(
            "SELECT 1 FROM oversight.deadlines WHERE complaint_id = $1 AND kind = $2"
            " AND step = 'breach' AND due_at = $3 AND agency IS NOT DISTINCT FROM $4"
            " AND status IN ('pending', 'fired') LIMIT 1",
            case["complaint_id"], kind, due, agency,
        )
        if same:
            return
    await cancel(conn, case["complaint_id"], (kind,))
    if due is None:
        return
    policy = policy_of(ctx.catalog, case.get("region"), agency, case.get("category"))
    share = share if share is not None else policy.warning_share
    cal = calendar_of(ctx.catalog, case.get("region"))
    warn: datetime | None = None
    if start < due:
        try:
            warn = cal.warning_at(start, due, share) if cal else start + (due - start) * share
        except ValueError:
            warn = None
    rows = [(kind, "breach", agency, due, due)]
    if warn is not None and warn < due:
        rows.append((kind, "warning", agency, due, warn))
    await conn.executemany(
        "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at, fire_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(case["complaint_id"], *r) for r in rows],
    )


async def schedule_all(conn: asyncpg.Connection, ctx: Context, case: dict[str, Any],
                       deadlines: dict[str, Any], start: datetime,
                       share: float | None = None) -> None:
    for kind in ("acknowledge", "resolve", "triage"):
        value = deadlines.get(DEADLINE_FIELD[kind])
        if value is not None:
            await schedule(conn, ctx, case, kind, _dt(value), start, share)


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def add_review_item(conn: asyncpg.Connection, complaint_id: str, reason: str,
                          source: str, detail: dict[str, Any], at: datetime) -> None:
    await conn.execute(
        "INSERT INTO oversight.review_items (complaint_id, reason, source, detail, created_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT DO NOTHING",
        complaint_id, reason, source, detail, at,
    )


_CASE_COLUMNS = (
    "tracking_code", "region", "category", "agency", "status", "submitted_at", "routed_at",
    "acknowledged_at", "resolved_at", "resolve_by", "acknowledge_by", "triage_by",
    "dispute_until", "paused_at", "resolution_disputed", "dispute_count", "rating",
    "resolved_on_time", "seq", "status_seq", "paused_from", "channel", "resolve_breached",
)


async def save_case(conn: asyncpg.Connection, catalog: Catalog, before: asyncpg.Record,
                    after: dict[str, Any]) -> None:
    """Store the case's changed columns and move its contribution to the statistics'
    rollups, in the caller's transaction (so the rollups stay exact)."""
    if after.get("resolve_by") != before["resolve_by"]:
        # Whether the resolution deadline now in force has fired as a breach (the
        # scheduler sets this when it fires; a deadline given again after its breach
        # stays breached).
        after["resolve_breached"] = after.get("resolve_by") is not None and bool(
            await conn.fetchval(
                "SELECT 1 FROM oversight.deadlines WHERE complaint_id = $1"
                " AND status = 'fired' AND step = 'breach' AND kind = 'resolve'"
                " AND due_at = $2 LIMIT 1", before["complaint_id"], after["resolve_by"]))
    changed = [c for c in _CASE_COLUMNS if after.get(c) != before[c]]
    if not changed:
        return
    await rollups.apply_change(conn, catalog, before, after)
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(changed))
    await conn.execute(
        f"UPDATE oversight.cases SET {sets}, updated_at = now() WHERE complaint_id = $1",
        before["complaint_id"], *(after[c] for c in changed),
    )


def make_handler(ctx: Context) -> Any:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        # The case timeline's step as a span of the complaint's trace.
        with tracing.span("case timeline", {"awasi.event_type": envelope.type}):
            await apply_event(conn, ctx, envelope)

    return handle


async def apply_event(conn: asyncpg.Connection, ctx: Context, env: Envelope) -> None:
    """Apply one event inside the caller's transaction (see the module docstring)."""
    now = ctx.clock.now()
    actor = None
    if env.producer == "oversight":
        # The panel member behind oversight's own claims, findings and reopenings
        # (written with the outbox row; see panel.record_action).
        actor = await conn.fetchval(
            "SELECT actor FROM oversight.panel_actions WHERE event_id = $1", env.event_id)
    await chain.append(conn, env, recorded_at=now, actor=actor)
    before = await lock_case(conn, env.complaint_id)
    case: dict[str, Any] = dict(before)
    p = env.payload
    at = env.occurred_at
    cid = env.complaint_id
    t = env.type

    def note_deadlines(d: dict[str, Any]) -> None:
        for kind in KINDS:
            if d.get(DEADLINE_FIELD[kind]) is not None:
                case[DEADLINE_FIELD[kind]] = _dt(d[DEADLINE_FIELD[kind]])
        if d.get("dispute_until") is not None:
            case["dispute_until"] = _dt(d["dispute_until"])

    # The lifecycle decides the status, and whether the event may touch the clocks
    # at all: a stale or impossible one (a late complaint.routed after a withdrawal)
    # stays on the timeline (appended above) and changes nothing else.
    name = lifecycle.event_name(t, p)
    step = lifecycle.apply(state_of(case), name, env.seq)
    case["seq"] = step.state.seq
    if step.applies:
        case.update(status=step.state.status, status_seq=step.state.status_seq,
                    paused_from=step.state.paused_from)

    # Facts that undo nothing apply whatever the order: who the case is, ratings,
    # disputes (the panel reviews every one).
    if t in ("complaint.submitted", "complaint.needs_triage", "complaint.routed"):
        case.update(tracking_code=case["tracking_code"] or p["tracking_code"],
                    region=p["region"], category=p["category"])
        if t == "complaint.submitted":
            case["submitted_at"] = _dt(p["submitted_at"])
            case["channel"] = p.get("channel") or "api"
        case["submitted_at"] = case["submitted_at"] or at
    elif t == "complaint.feedback_given":
        if p.get("rating") is not None:
            case["rating"] = p["rating"]
            if p["rating"] <= 2:
                await add_review_item(conn, cid, "low_rating", str(env.event_id),
                                      {"rating": p["rating"]}, now)
        if p.get("dispute"):
            case["dispute_count"] = case["dispute_count"] + 1
            case["resolution_disputed"] = True
            await add_review_item(conn, cid, "dispute", str(env.event_id),
                                  {"agency": case["agency"]}, now)

    if not step.applies:
        await save_case(conn, ctx.catalog, before, case)
        return
    if case["status"] != "waiting_info" and before["status"] == "waiting_info":
        # The pause ended (answered, resolved, transferred, withdrawn, archived): no
        # reminder, no archiving.
        await cancel(conn, cid, ("info",))
    if t == "complaint.needs_triage":
        note_deadlines(p["deadlines"])
        await schedule(conn, ctx, case, "triage", _opt(p["deadlines"].get("triage_by")), at)
    elif t == "complaint.routed":
        case["agency"] = p["agency"]
        case["routed_at"] = case["routed_at"] or at
        note_deadlines(p["deadlines"])
        await cancel(conn, cid, ("triage",))
        await schedule_all(conn, ctx, case, {k: v for k, v in p["deadlines"].items()
                                             if k != "triage_by"}, at, p.get("warning_share"))
    elif t == "ticket.acknowledged":
        case["agency"] = p["agency"]
        case["acknowledged_at"] = case["acknowledged_at"] or at
        note_deadlines(p["deadlines"])
        await cancel(conn, cid, ("acknowledge", "triage"))
        if p["deadlines"].get("resolve_by") is not None:
            await schedule(conn, ctx, case, "resolve", _dt(p["deadlines"]["resolve_by"]), at)
    elif t == "ticket.info_requested":
        # The clock pauses: nothing may fall due until the router says it resumed.
        case["paused_at"] = _dt(p["paused_at"])
        await cancel(conn, cid, ("acknowledge", "resolve"))
        await schedule_archive(conn, ctx, case, case["paused_at"])
    elif t == "ticket.clock_resumed":
        case.update(paused_at=None, agency=p.get("agency") or case["agency"])
        deadlines = p.get("deadlines") or {}
        note_deadlines(deadlines)
        resumed = _opt(p.get("resumed_at")) or at
        await schedule_all(conn, ctx, case, deadlines, resumed)
    elif t == "ticket.resolved":
        resolve_by = case["resolve_by"]
        case.update(resolved_at=at, resolution_disputed=False, paused_at=None,
                    agency=p["agency"],
                    resolved_on_time=resolve_by is None or at <= resolve_by)
        note_deadlines(p["deadlines"])
        await cancel(conn, cid, KINDS)
        # Silence until the dispute window closes closes the case (case.closed).
        await schedule_close(conn, case, _opt(p["deadlines"].get("dispute_until")))
        if audit_sampled(cid, ctx.catalog.audit_sample_share):
            await add_review_item(conn, cid, "audit_sample", str(env.event_id),
                                  {"agency": p["agency"]}, now)
    elif t in ("ticket.transferred", "ticket.reopened"):
        case.update(agency=p["agency"], paused_at=None)
        if t == "ticket.reopened":
            case["acknowledged_at"] = None
        note_deadlines(p["deadlines"])
        await cancel(conn, cid, (*KINDS, "dispute"))
        await schedule_all(conn, ctx, case, p["deadlines"], at)
    elif name in ("complaint.disputed", "case.reopened"):
        # Back to the agency: the dispute window is moot; the router's
        # ticket.reopened brings the fresh deadlines.
        await cancel(conn, cid, ("dispute",))
    elif t == "ticket.returned_to_triage":
        case.update(agency=None, paused_at=None, acknowledged_at=None, acknowledge_by=None,
                    resolve_by=None)
        note_deadlines(p["deadlines"])
        await cancel(conn, cid, (*KINDS, "dispute"))
        await schedule(conn, ctx, case, "triage", _opt(p["deadlines"].get("triage_by")), at)
    elif t == "ticket.moved_region":
        case["region"] = p["region"]
        note_deadlines(p["deadlines"])
        await schedule(conn, ctx, case, "triage", _opt(p["deadlines"].get("triage_by")), at)
    elif t == "ticket.rejected":
        # Every rejection is reviewed: triage must not bury complaints.
        await cancel(conn, cid, KINDS)
        await add_review_item(conn, cid, "rejection", str(env.event_id),
                              {"reason_code": p["reason_code"], "reason": p["reason"],
                               "duplicate_of": p.get("duplicate_of")}, now)
    elif t == "ticket.duplicate_linked":
        # A duplicate ends like a rejection, and is reviewed like one: linking must
        # not become a way to bury a complaint under another.
        await cancel(conn, cid, (*KINDS, "dispute"))
        await add_review_item(conn, cid, "rejection", str(env.event_id),
                              {"reason_code": "duplicate", "agency": p.get("agency"),
                               "duplicate_of": p["original_tracking_code"]}, now)
    elif name in ("complaint.withdrawn", "case.closed", "case.dispute_rejected"):
        case["paused_at"] = None
        await cancel(conn, cid, (*KINDS, "dispute"))
    # Everything else (info added, responses, oversight's own events) is timeline only.
    await save_case(conn, ctx.catalog, before, case)


def state_of(case: dict[str, Any] | asyncpg.Record) -> lifecycle.State:
    """The case's lifecycle state."""
    return lifecycle.State(status=case["status"], seq=case["seq"],
                           status_seq=case["status_seq"], paused_from=case["paused_from"])


async def next_seq(conn: asyncpg.Connection, complaint_id: str) -> int:
    """Advance and return the case's sequence number, for an event oversight itself
    writes (call with the case row locked, in the event's transaction)."""
    seq = await conn.fetchval(
        "UPDATE oversight.cases SET seq = seq + 1 WHERE complaint_id = $1 RETURNING seq",
        complaint_id)
    return int(seq or 0)


async def schedule_archive(conn: asyncpg.Connection, ctx: Context, case: dict[str, Any],
                           paused_at: datetime) -> None:
    """The citizen has the catalog's ``incomplete_archive_days`` (calendar days) to
    answer: a last reminder ``archive_reminder_days`` before, then ``case.archived``."""
    policy = policy_of(ctx.catalog, case.get("region"), case.get("agency"),
                       case.get("category"))
    archive_at = paused_at + timedelta(days=policy.incomplete_archive_days)
    remind_at = archive_at - timedelta(days=policy.archive_reminder_days)
    await cancel(conn, case["complaint_id"], ("info",))
    await conn.executemany(
        "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at, fire_at)"
        " VALUES ($1, 'info', $2, $3, $4, $5)",
        [(case["complaint_id"], step, case.get("agency"), archive_at, at)
         for step, at in (("reminder", remind_at), ("archive", archive_at))
         if at > paused_at])


async def schedule_close(conn: asyncpg.Connection, case: dict[str, Any],
                         until: datetime | None) -> None:
    """Close the case when the dispute window ends unless the citizen disputes
    first (a ``dispute`` deadline row: the scheduler emits ``case.closed``)."""
    await cancel(conn, case["complaint_id"], ("dispute",))
    if until is None:
        return
    await conn.execute(
        "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at, fire_at)"
        " VALUES ($1, 'dispute', 'close', $2, $3, $3)",
        case["complaint_id"], case.get("agency"), until)


def _opt(value: Any) -> datetime | None:
    return None if value is None else _dt(value)


def level2_at(catalog: Catalog, case: asyncpg.Record, due: datetime) -> datetime:
    """When a breach escalates to level 2: the policy's further working days after it."""
    policy = policy_of(catalog, case["region"], case["agency"], case["category"])
    cal = calendar_of(catalog, case["region"])
    if cal is None:
        return due + timedelta(days=policy.escalation_level2_days)
    return cal.add_working_days(due, policy.escalation_level2_days)
