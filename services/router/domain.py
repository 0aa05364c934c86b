"""What can happen to a ticket: routing, the agency's actions, the triage officer's
decision, and the effects of the citizen's and oversight's events.

Every function runs inside the caller's transaction, locks the ticket row, changes
it, adds to its timeline and writes the resulting events to the outbox, so the
change and its events commit (or vanish) together.

Statuses: ``triage`` (no rule routed it; the region's triage queue) -> ``new`` (an
agency has it) -> ``acknowledged`` -> ``resolved``; ``waiting_info`` while the
agency waits for the citizen's answer (the clock is paused); ``reopened`` after
oversight reopens a resolved case; ``withdrawn`` when the citizen withdraws.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from awasi.catalog import Catalog, UnknownCode
from awasi.events import topics
from awasi.events.consumer import PoisonEvent
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    ComplaintNeedsTriage,
    ComplaintRouted,
    ComplaintSubmitted,
    Deadlines,
    Payload,
    TicketAcknowledged,
    TicketClockResumed,
    TicketInfoRequested,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketTransferred,
)
from awasi.identity import User
from services.router import db, deadlines
from services.router.errors import InvalidAgency, InvalidTransition

SCHEMA = "router"
PRODUCER = "router"

# The statuses each action may start from; anything else is a 409.
ALLOWED: dict[str, frozenset[str]] = {
    "acknowledge": frozenset({"new", "reopened"}),
    "request_info": frozenset({"new", "acknowledged", "reopened"}),
    "respond": frozenset({"new", "acknowledged", "reopened", "waiting_info"}),
    "resolve": frozenset({"new", "acknowledged", "reopened", "waiting_info"}),
    "transfer": frozenset({"new", "acknowledged", "reopened", "waiting_info"}),
}
OPEN = frozenset({"triage", "new", "acknowledged", "waiting_info", "reopened"})


def _require(action: str, ticket: asyncpg.Record) -> None:
    if ticket["status"] not in ALLOWED[action]:
        raise InvalidTransition(action.replace("_", " "), ticket["status"])


async def emit(conn: asyncpg.Connection, ticket: asyncpg.Record, payload: Payload,
               occurred_at: datetime, actor: str, data: dict[str, object] | None = None,
               ) -> None:
    """Record ``payload`` on the ticket's timeline and put it in the outbox."""
    envelope = Envelope.build(payload, complaint_id=ticket["complaint_id"],
                              producer=PRODUCER, occurred_at=occurred_at)
    timeline_data = payload.model_dump(mode="json") if data is None else data
    await db.add_timeline(conn, ticket["id"], payload.EVENT_TYPE, occurred_at, actor,
                          ticket["agency"], timeline_data)
    await add_to_outbox(conn, SCHEMA, topics.ROUTER, envelope)


def _deadlines(row: asyncpg.Record) -> Deadlines:
    return Deadlines(
        acknowledge_by=None if row["acknowledged_at"] else row["acknowledge_by"],
        resolve_by=row["resolve_by"], triage_by=row["triage_by"],
        dispute_until=row["dispute_until"],
    )


# --- routing ------------------------------------------------------------------------

async def route_submitted(conn: asyncpg.Connection, catalog: Catalog,
                          envelope: Envelope) -> asyncpg.Record | None:
    """Create the ticket for a ``complaint.submitted`` event and route it: the
    catalog's category rule, else a keyword rule on the title and text, else the
    region's triage queue. Returns the new ticket, or ``None`` if the complaint
    already has one (a redelivery under a new event id changes nothing).
    Raises ``PoisonEvent`` for a region the catalog does not know."""
    p = envelope.typed_payload()
    assert isinstance(p, ComplaintSubmitted)
    text = f"{p.title or ''}\n{p.description}"
    try:
        decision = catalog.route(p.region, p.category, text)
    except UnknownCode as e:
        raise PoisonEvent(str(e)) from e
    start = p.submitted_at
    now = envelope.occurred_at
    warning_share = 0.8
    status, agency, triage, ack, res = "triage", None, None, None, None
    if decision.agency is None:
        triage = deadlines.triage_by(catalog, p.region, p.category, start)
        first_kind = ComplaintNeedsTriage.EVENT_TYPE
        first_data: dict[str, object] = {"rule": decision.rule}
    else:
        a = deadlines.assigned(catalog, p.region, decision.agency, p.category, start)
        status, agency, ack, res = "new", decision.agency, a.acknowledge_by, a.resolve_by
        warning_share = a.policy.warning_share
        first_kind = ComplaintRouted.EVENT_TYPE
        first_data = {"agency": decision.agency, "rule": decision.rule}
    # One statement for the ticket and its first two timeline entries: this runs for
    # every complaint, and round trips are most of its cost.
    row = await conn.fetchrow(
        "WITH t AS (INSERT INTO router.tickets (id, complaint_id, tracking_code, region,"
        " category, title, description, location, privacy, reporter_ref, channel, photo_ids,"
        " submitted_at, status, agency, rule, assigned_at, triage_by, acknowledge_by,"
        " resolve_by, next_due)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17, $18, $19, $20, $21)"
        " ON CONFLICT (complaint_id) DO NOTHING RETURNING *),"
        " tl AS (INSERT INTO router.timeline (ticket_id, kind, occurred_at, actor, agency, data)"
        " SELECT id, 'complaint.submitted', $13, 'citizen', NULL, $22::jsonb FROM t"
        " UNION ALL SELECT id, $23, $24, 'router', agency, $25::jsonb FROM t)"
        " SELECT * FROM t",
        uuid.uuid4(), envelope.complaint_id, p.tracking_code, p.region, p.category,
        p.title, p.description,
        p.location.model_dump(mode="json") if p.location else None,
        p.privacy, p.reporter_ref, p.channel, list(p.photo_ids), p.submitted_at,
        status, agency, decision.rule, start if agency else None, triage, ack, res,
        ack if agency else triage,
        {"channel": p.channel, "photo_ids": list(p.photo_ids)}, first_kind, now, first_data,
    )
    if row is None:
        return None
    payload: Payload
    if agency is None:
        payload = ComplaintNeedsTriage(
            tracking_code=p.tracking_code, region=p.region, category=p.category,
            deadlines=_deadlines(row))
    else:
        payload = ComplaintRouted(
            tracking_code=p.tracking_code, region=p.region, category=p.category,
            agency=agency, rule=decision.rule, deadlines=_deadlines(row),
            warning_share=warning_share)
    out = Envelope.build(payload, complaint_id=envelope.complaint_id, producer=PRODUCER,
                         occurred_at=now)
    await add_to_outbox(conn, SCHEMA, topics.ROUTER, out)
    return row


async def route_by_hand(conn: asyncpg.Connection, catalog: Catalog, user: User,
                        ticket_id: str, agency: str, now: datetime) -> asyncpg.Record:
    """A triage officer sends a ticket of the triage queue to ``agency`` (of the
    ticket's region). Deadlines count from now. Raises ``TicketNotFound`` (not in
    the officer's triage queue) or ``InvalidAgency``."""
    t = await db.lock_ticket(conn, ticket_id, triage=True, triage_region=user.region)
    _check_agency(catalog, t["region"], agency)
    a = deadlines.assigned(catalog, t["region"], agency, t["category"], now)
    rule = f"manual:{user.username}"
    row = await db.update(conn, t, now, status="new", agency=agency, rule=rule,
                          assigned_at=now, acknowledge_by=a.acknowledge_by,
                          resolve_by=a.resolve_by)
    await emit(conn, row, ComplaintRouted(
        tracking_code=row["tracking_code"], region=row["region"], category=row["category"],
        agency=agency, rule=rule, deadlines=_deadlines(row),
        warning_share=a.policy.warning_share), now, user.username,
        {"agency": agency, "rule": rule})
    return row


def _check_agency(catalog: Catalog, region: str, agency: str,
                  current: str | None = None) -> None:
    found = catalog.agencies.get(agency)
    if found is None or found.region != region:
        raise InvalidAgency(f"No agency {agency!r} in region {region}")
    if agency == current:
        raise InvalidAgency("The ticket is already with this agency")


# --- the agency's actions -------------------------------------------------------------

async def acknowledge(conn: asyncpg.Connection, catalog: Catalog, user: User,
                      ticket_id: str, now: datetime) -> asyncpg.Record:
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("acknowledge", t)
    row = await db.update(conn, t, now, status="acknowledged", acknowledged_at=now)
    await emit(conn, row, TicketAcknowledged(agency=row["agency"], deadlines=_deadlines(row)),
               now, user.username)
    return row


async def request_info(conn: asyncpg.Connection, catalog: Catalog, user: User,
                       ticket_id: str, question: str, now: datetime) -> asyncpg.Record:
    """Ask the citizen; the clock pauses until ``complaint.info_added`` arrives."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("request_info", t)
    row = await db.update(conn, t, now, status="waiting_info", paused_at=now,
                          status_before_pause=t["status"])
    await emit(conn, row, TicketInfoRequested(agency=row["agency"], question=question,
                                              paused_at=now), now, user.username)
    return row


async def respond(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                  message: str, now: datetime) -> asyncpg.Record:
    """A public message to the citizen; the status does not change."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("respond", t)
    row = await db.update(conn, t, now)
    await emit(conn, row, TicketResponded(agency=row["agency"], message=message), now,
               user.username)
    return row


async def resolve(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                  note: str, now: datetime) -> asyncpg.Record:
    """Resolved; the citizen may dispute until ``dispute_until``. Ends a pause."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("resolve", t)
    until = deadlines.dispute_until(catalog, t["region"], t["agency"], t["category"], now)
    row = await db.update(conn, t, now, status="resolved", resolved_at=now,
                          dispute_until=until, paused_at=None, status_before_pause=None)
    await emit(conn, row, TicketResolved(agency=row["agency"], note=note,
                                         deadlines=Deadlines(dispute_until=until)),
               now, user.username)
    return row


async def transfer(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                   agency: str, reason: str, now: datetime) -> asyncpg.Record:
    """Hand the ticket to another agency of the region ("bukan wewenang"); the new
    agency's deadlines count from now under its own policy."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("transfer", t)
    _check_agency(catalog, t["region"], agency, current=t["agency"])
    a = deadlines.assigned(catalog, t["region"], agency, t["category"], now)
    row = await db.update(conn, t, now, status="new", agency=agency, assigned_at=now,
                          rule=f"transfer:{t['agency']}", acknowledged_at=None,
                          acknowledge_by=a.acknowledge_by, resolve_by=a.resolve_by,
                          paused_at=None, status_before_pause=None)
    payload = TicketTransferred(from_agency=t["agency"], agency=agency, reason=reason,
                                deadlines=_deadlines(row))
    # The timeline entry is filed under the sending agency: it is its action.
    envelope = Envelope.build(payload, complaint_id=row["complaint_id"], producer=PRODUCER,
                              occurred_at=now)
    await db.add_timeline(conn, row["id"], payload.EVENT_TYPE, now, user.username,
                          t["agency"], payload.model_dump(mode="json"))
    await add_to_outbox(conn, SCHEMA, topics.ROUTER, envelope)
    return row


# --- events from intake and oversight -----------------------------------------------

async def apply_event(conn: asyncpg.Connection, catalog: Catalog, envelope: Envelope) -> None:
    """Apply an event of another service to its ticket (see ``HANDLED``)."""
    if envelope.type == "complaint.submitted":
        await route_submitted(conn, catalog, envelope)
        return
    t = await db.lock_by_complaint(conn, envelope.complaint_id)
    if t is None:
        # Oversight and intake only speak of complaints we routed; one we never saw
        # cannot be applied, and must not vanish silently.
        raise PoisonEvent(f"no ticket for complaint {envelope.complaint_id}")
    if envelope.type == "complaint.supported":
        # A count, not a step of the case: no timeline entry per support, and the
        # largest total wins (events may repeat or arrive late).
        count = int(envelope.payload["support_count"])
        if count > t["support_count"]:
            await db.update(conn, t, envelope.occurred_at, support_count=count)
        return
    now = envelope.occurred_at
    payload = envelope.payload
    actor = "citizen" if envelope.producer == "intake" else envelope.producer
    await db.add_timeline(conn, t["id"], envelope.type, now, actor, t["agency"], payload)
    if envelope.type == "complaint.info_added" and t["status"] == "waiting_info":
        await _resume(conn, catalog, t, now)
    elif envelope.type == "complaint.withdrawn" and t["status"] in OPEN:
        await db.update(conn, t, now, status="withdrawn", paused_at=None)
    elif envelope.type == "case.escalated":
        level = max(t["escalation_level"], int(payload["level"]))
        await db.update(conn, t, now, escalation_level=level)
    elif envelope.type == "deadline.breached":
        kinds = sorted(set(t["breached"]) | {payload["kind"]})
        await db.update(conn, t, now, breached=kinds)
    elif envelope.type == "case.reopened" and t["agency"] is not None:
        await _reopen(conn, catalog, t, str(payload.get("reason") or ""), now)


async def _resume(conn: asyncpg.Connection, catalog: Catalog, t: asyncpg.Record,
                  now: datetime) -> None:
    paused_at = t["paused_at"]
    ack = None if t["acknowledged_at"] else deadlines.resumed(
        catalog, t["region"], paused_at, now, t["acknowledge_by"])
    res = deadlines.resumed(catalog, t["region"], paused_at, now, t["resolve_by"])
    row = await db.update(conn, t, now, status=t["status_before_pause"] or "acknowledged",
                          paused_at=None, status_before_pause=None,
                          acknowledge_by=ack if ack is not None else t["acknowledge_by"],
                          resolve_by=res)
    await emit(conn, row, TicketClockResumed(agency=row["agency"], resumed_at=now,
                                             deadlines=_deadlines(row)), now, "router")


async def _reopen(conn: asyncpg.Connection, catalog: Catalog, t: asyncpg.Record,
                  reason: str, now: datetime) -> None:
    a = deadlines.assigned(catalog, t["region"], t["agency"], t["category"], now)
    row = await db.update(conn, t, now, status="reopened", acknowledged_at=None,
                          resolved_at=None, dispute_until=None, paused_at=None,
                          status_before_pause=None, acknowledge_by=a.acknowledge_by,
                          resolve_by=a.resolve_by)
    await emit(conn, row, TicketReopened(agency=row["agency"], reason=reason or "reopened",
                                         deadlines=_deadlines(row)), now, "router")


HANDLED = frozenset({
    "complaint.submitted", "complaint.info_added", "complaint.feedback_given",
    "complaint.withdrawn", "case.escalated", "finding.recorded", "case.reopened",
    "deadline.breached", "deadline.warning", "complaint.supported",
})
