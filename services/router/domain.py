"""What can happen to a ticket: routing, the agency's actions, the triage officer's
decision, and the effects of the citizen's and oversight's events.

Every function runs inside the caller's transaction, locks the ticket row, changes
it, adds to its timeline and writes the resulting events to the outbox, so the
change and its events commit (or vanish) together.

Statuses, transitions and which action is allowed when come from the one lifecycle
(``awasi.lifecycle``): ``triage`` (no rule routed it) -> ``assigned`` (the desk says
"new") -> ``acknowledged`` -> ``resolved``; ``waiting_info`` while the agency waits
for the citizen (the clock is paused); ``reopened`` after a dispute or the panel
sent it back; ``closed``; ``withdrawn``. Every event the router writes carries the
complaint's next sequence number (``seq``), and a consumed event older than the
fact behind the ticket's status is recorded on the timeline and otherwise ignored.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from awasi import lifecycle
from awasi.catalog import Catalog
from awasi.events import topics
from awasi.events.consumer import PoisonEvent
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    ComplaintRouted,
    Deadlines,
    Payload,
    TicketAcknowledged,
    TicketClockResumed,
    TicketInfoRequested,
    TicketMovedRegion,
    TicketRejected,
    TicketReopened,
    TicketResolved,
    TicketResponded,
    TicketReturnedToTriage,
    TicketTransferred,
)
from awasi.identity import User
from services.router import db, deadlines, routing
from services.router.errors import InvalidAgency, InvalidTransition
from services.router.routing import PRODUCER, SCHEMA

AGENCY_ACTIONS = ("acknowledge", "request_info", "respond", "resolve", "transfer")
# The statuses each action may start from (from the lifecycle's table); anything
# else is a 409.
ALLOWED: dict[str, frozenset[str]] = {
    action: frozenset(s for s in lifecycle.STATUSES if action in lifecycle.staff_actions(s))
    for action in AGENCY_ACTIONS
}
OPEN = frozenset(lifecycle.OPEN)
# The event each agency action emits (its name in the lifecycle's table).
_EVENT = {"acknowledge": "ticket.acknowledged", "request_info": "ticket.info_requested",
          "respond": "ticket.responded", "resolve": "ticket.resolved",
          "transfer": "ticket.transferred"}


def state_of(t: asyncpg.Record) -> lifecycle.State:
    """The ticket's lifecycle state."""
    return lifecycle.State(status=t["status"], seq=t["seq"], status_seq=t["status_seq"],
                           paused_from=t["status_before_pause"])


def state_columns(state: lifecycle.State) -> dict[str, object]:
    return {"status": state.status, "seq": state.seq, "status_seq": state.status_seq,
            "status_before_pause": state.paused_from}


def _require(action: str, ticket: asyncpg.Record) -> dict[str, object]:
    """The ticket's columns after ``action`` (with its sequence number), or
    ``InvalidTransition`` if the lifecycle does not allow it now."""
    if ticket["status"] not in ALLOWED[action]:
        raise InvalidTransition(action.replace("_", " "), ticket["status"])
    state = state_of(ticket)
    step = lifecycle.apply(state, _EVENT[action], lifecycle.next_seq(state))
    return state_columns(step.state)


async def emit(conn: asyncpg.Connection, ticket: asyncpg.Record, payload: Payload,
               occurred_at: datetime, actor: str, data: dict[str, object] | None = None,
               ) -> None:
    """Record ``payload`` on the ticket's timeline and put it in the outbox, stamped
    with the ticket's sequence number (the caller has just advanced it)."""
    envelope = Envelope.build(payload, complaint_id=ticket["complaint_id"],
                              producer=PRODUCER, occurred_at=occurred_at, seq=ticket["seq"])
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


# --- routing by hand (a rule's routing is services/router/routing.py) ---------------

async def route_by_hand(conn: asyncpg.Connection, catalog: Catalog, user: User,
                        ticket_id: str, agency: str, now: datetime) -> asyncpg.Record:
    """A triage officer sends a ticket of the triage queue to ``agency`` (of the
    ticket's region). Deadlines count from now. Raises ``TicketNotFound`` (not in
    the officer's triage queue) or ``InvalidAgency``."""
    t = await db.lock_ticket(conn, ticket_id, triage=True, triage_region=user.region)
    _check_agency(catalog, t["region"], agency)
    a = deadlines.assigned(catalog, t["region"], agency, t["category"], now)
    rule = f"manual:{user.username}"
    state = state_of(t)
    step = lifecycle.apply(state, ComplaintRouted.EVENT_TYPE, lifecycle.next_seq(state))
    row = await db.update(conn, t, now, **state_columns(step.state), agency=agency, rule=rule,
                          assigned_at=now, acknowledge_by=a.acknowledge_by,
                          resolve_by=a.resolve_by)
    await emit(conn, row, ComplaintRouted(
        tracking_code=row["tracking_code"], region=row["region"], category=row["category"],
        agency=agency, rule=rule, deadlines=_deadlines(row),
        warning_share=a.policy.warning_share), now, user.username,
        {"agency": agency, "rule": rule})
    return row


async def reject_by_hand(conn: asyncpg.Connection, catalog: Catalog, user: User,
                         ticket_id: str, reason_code: str, reason: str,
                         duplicate_of: str | None, now: datetime) -> asyncpg.Record:
    """A triage officer refuses a ticket of the triage queue (not a complaint, spam,
    a duplicate of ``duplicate_of``), with a reason the citizen reads; oversight puts
    every rejection in the panel's queue. Raises ``TicketNotFound`` (not in the
    officer's triage queue) or ``InvalidTransition``."""
    t = await db.lock_ticket(conn, ticket_id, triage=True, triage_region=user.region)
    if "reject" not in lifecycle.staff_actions(t["status"]):
        raise InvalidTransition("reject", t["status"])
    state = state_of(t)
    step = lifecycle.apply(state, TicketRejected.EVENT_TYPE, lifecycle.next_seq(state))
    row = await db.update(conn, t, now, **state_columns(step.state),
                          rule=f"rejected:{user.username}")
    await emit(conn, row, TicketRejected(reason_code=reason_code,  # type: ignore[arg-type]
                                         reason=reason, duplicate_of=duplicate_of),
               now, user.username)
    return row


async def move_region(conn: asyncpg.Connection, catalog: Catalog, user: User,
                      ticket_id: str, region: str, reason: str,
                      now: datetime) -> asyncpg.Record:
    """Wrong city: a triage officer moves a ticket of the triage queue to ``region``'s
    triage queue (its triage deadline counts from now). Raises ``TicketNotFound`` (not
    in the officer's queue) or ``InvalidAgency`` (an unknown or the same region)."""
    t = await db.lock_ticket(conn, ticket_id, triage=True, triage_region=user.region)
    if region not in catalog.regions or region == t["region"]:
        raise InvalidAgency(f"No other region {region!r} to move the complaint to")
    state = state_of(t)
    step = lifecycle.apply(state, TicketMovedRegion.EVENT_TYPE, lifecycle.next_seq(state))
    row = await db.update(conn, t, now, **state_columns(step.state), region=region,
                          rule=f"moved:{user.username}",
                          triage_by=deadlines.triage_by(catalog, region, t["category"], now))
    await emit(conn, row, TicketMovedRegion(from_region=t["region"], region=region,
                                            reason=reason, deadlines=_deadlines(row)),
               now, user.username)
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
    row = await db.update(conn, t, now, **_require("acknowledge", t), acknowledged_at=now,
                          warned=[k for k in t["warned"] if k != "acknowledge"])
    await emit(conn, row, TicketAcknowledged(agency=row["agency"], deadlines=_deadlines(row)),
               now, user.username)
    return row


async def request_info(conn: asyncpg.Connection, catalog: Catalog, user: User,
                       ticket_id: str, question: str, now: datetime) -> asyncpg.Record:
    """Ask the citizen; the clock pauses until ``complaint.info_added`` arrives."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    row = await db.update(conn, t, now, **_require("request_info", t), paused_at=now)
    await emit(conn, row, TicketInfoRequested(agency=row["agency"], question=question,
                                              paused_at=now), now, user.username)
    return row


async def respond(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                  message: str, now: datetime) -> asyncpg.Record:
    """A public message to the citizen; the status does not change."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    row = await db.update(conn, t, now, **_require("respond", t))
    await emit(conn, row, TicketResponded(agency=row["agency"], message=message), now,
               user.username)
    return row


async def resolve(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                  note: str, now: datetime) -> asyncpg.Record:
    """Resolved; the citizen may dispute until ``dispute_until``. Ends a pause."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    columns = _require("resolve", t)
    until = deadlines.dispute_until(catalog, t["region"], t["agency"], t["category"], now)
    row = await db.update(conn, t, now, **columns, resolved_at=now,
                          dispute_until=until, paused_at=None, warned=[])
    await emit(conn, row, TicketResolved(agency=row["agency"], note=note,
                                         deadlines=Deadlines(dispute_until=until)),
               now, user.username)
    return row


async def transfer(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                   agency: str, reason: str, now: datetime) -> asyncpg.Record:
    """Hand the ticket to another agency of the region ("bukan wewenang"); the new
    agency's deadlines count from now under its own policy. After
    ``lifecycle.MAX_TRANSFERS`` transfers, a further one sends the ticket back to the
    region's triage officer instead (``ticket.returned_to_triage``). The sending
    agency keeps a read-only view of it (``db.transferred_by``)."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    _require("transfer", t)
    _check_agency(catalog, t["region"], agency, current=t["agency"])
    state = state_of(t)
    payload: Payload
    if t["transfers"] >= lifecycle.MAX_TRANSFERS:
        # Bounced too often: the region's triage officer decides, not another agency.
        step = lifecycle.apply(state, TicketReturnedToTriage.EVENT_TYPE,
                               lifecycle.next_seq(state))
        row = await db.update(conn, t, now, **state_columns(step.state), agency=None,
                              assigned_at=None, rule=f"returned:{t['agency']}",
                              acknowledged_at=None, acknowledge_by=None, resolve_by=None,
                              triage_by=deadlines.triage_by(catalog, t["region"],
                                                            t["category"], now),
                              paused_at=None, transfers=t["transfers"] + 1, warned=[],
                              assignee=None)
        payload = TicketReturnedToTriage(from_agency=t["agency"], reason=reason,
                                         deadlines=_deadlines(row))
    else:
        step = lifecycle.apply(state, TicketTransferred.EVENT_TYPE, lifecycle.next_seq(state))
        a = deadlines.assigned(catalog, t["region"], agency, t["category"], now)
        row = await db.update(conn, t, now, **state_columns(step.state), agency=agency,
                              assigned_at=now, rule=f"transfer:{t['agency']}",
                              acknowledged_at=None, acknowledge_by=a.acknowledge_by,
                              resolve_by=a.resolve_by, paused_at=None,
                              transfers=t["transfers"] + 1, warned=[],
                              assignee=None)
        payload = TicketTransferred(from_agency=t["agency"], agency=agency, reason=reason,
                                    deadlines=_deadlines(row))
    # The timeline entry is filed under the sending agency: it is its action.
    envelope = Envelope.build(payload, complaint_id=row["complaint_id"], producer=PRODUCER,
                              occurred_at=now, seq=row["seq"])
    await db.add_timeline(conn, row["id"], payload.EVENT_TYPE, now, user.username,
                          t["agency"], payload.model_dump(mode="json"))
    await add_to_outbox(conn, SCHEMA, topics.ROUTER, envelope)
    return row


# --- events from intake and oversight -----------------------------------------------

async def apply_event(conn: asyncpg.Connection, catalog: Catalog, envelope: Envelope) -> None:
    """Apply an event of another service to its ticket (see ``HANDLED``) through the
    lifecycle: an event it finds stale or impossible now (a late one from another
    topic) is recorded on the timeline, marked ignored, and changes nothing else."""
    if envelope.type == "complaint.submitted":
        await routing.route_many(conn, catalog, [envelope])
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
    name = lifecycle.event_name(envelope.type, payload)
    step = lifecycle.apply(state_of(t), name, envelope.seq)
    await db.add_timeline(conn, t["id"], envelope.type, now, actor, t["agency"],
                          payload if step.applies else {**payload, "ignored": step.outcome})
    columns = state_columns(step.state) if step.applies else {"seq": step.state.seq}
    if not step.applies:
        await db.update(conn, t, now, **columns)
    elif name == "complaint.info_added" and step.outcome == "moved":
        await _resume(conn, catalog, t, step.state, now)
    elif name in ("complaint.withdrawn", "case.closed", "case.dispute_rejected"):
        await db.update(conn, t, now, **columns, paused_at=None)
    elif name in ("complaint.disputed", "case.reopened") and t["agency"] is not None:
        # A dispute reopens the ticket for the same agency at once; the panel reviews
        # it in parallel (and may close the case by rejecting the dispute).
        reason = ("disputed by the citizen" if name == "complaint.disputed"
                  else str(payload.get("reason") or ""))
        await _reopen(conn, catalog, t, step.state, reason, now)
    elif envelope.type == "case.escalated":
        level = max(t["escalation_level"], int(payload["level"]))
        await db.update(conn, t, now, **columns, escalation_level=level)
        await _notify(conn, catalog, t, envelope, int(payload["level"]),
                      str(payload["kind"]), now)
    elif envelope.type == "deadline.warning" and t["agency"] is not None:
        # The queue's badge and filter: this clock is close to running out.
        await db.update(conn, t, now, **columns,
                        warned=sorted(set(t["warned"]) | {payload["kind"]}))
        if t["assignee"] is not None:
            # The warning reaches the person working the ticket first, on their desk.
            await conn.execute(
                "INSERT INTO router.notifications (event_id, agency, audience, username,"
                " ticket_id, tracking_code, ticket_agency, level, deadline, created_at)"
                " VALUES ($1, $2, 'assignee', $3, $4, $5, $2, 0, $6, $7)"
                " ON CONFLICT DO NOTHING",
                envelope.event_id, t["agency"], t["assignee"], t["id"], t["tracking_code"],
                str(payload["kind"]), now)
    elif envelope.type == "deadline.breached":
        kinds = sorted(set(t["breached"]) | {payload["kind"]})
        await db.update(conn, t, now, **columns, breached=kinds)
    else:
        await db.update(conn, t, now, **columns)


async def _notify(conn: asyncpg.Connection, catalog: Catalog, t: asyncpg.Record,
                  envelope: Envelope, level: int, kind: str, now: datetime) -> None:
    """An escalation reaches people: level 1 (the breach) the agency's head, level 2
    the region's inspectorate, each on their desk's notifications list."""
    if level == 1:
        audience, desk = "head", t["agency"]
    else:
        inspectorate = catalog.inspectorate(t["region"]) if t["region"] in catalog.regions \
            else None
        audience, desk = "inspectorate", inspectorate.code if inspectorate else None
    if desk is None:
        return
    await conn.execute(
        "INSERT INTO router.notifications (event_id, agency, audience, ticket_id,"
        " tracking_code, ticket_agency, level, deadline, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        envelope.event_id, desk, audience, t["id"], t["tracking_code"], t["agency"], level,
        kind, now)


async def _resume(conn: asyncpg.Connection, catalog: Catalog, t: asyncpg.Record,
                  state: lifecycle.State, now: datetime) -> None:
    """The citizen answered: the clock runs again, each deadline moved by the pause,
    and the router says so (``ticket.clock_resumed``, its own next fact)."""
    paused_at = t["paused_at"]
    ack = None if t["acknowledged_at"] else deadlines.resumed(
        catalog, t["region"], paused_at, now, t["acknowledge_by"])
    res = deadlines.resumed(catalog, t["region"], paused_at, now, t["resolve_by"])
    state = lifecycle.apply(state, TicketClockResumed.EVENT_TYPE,
                            lifecycle.next_seq(state)).state
    row = await db.update(conn, t, now, **state_columns(state), paused_at=None,
                          acknowledge_by=ack if ack is not None else t["acknowledge_by"],
                          resolve_by=res)
    await emit(conn, row, TicketClockResumed(agency=row["agency"], resumed_at=now,
                                             deadlines=_deadlines(row)), now, "router")


async def _reopen(conn: asyncpg.Connection, catalog: Catalog, t: asyncpg.Record,
                  state: lifecycle.State, reason: str, now: datetime) -> None:
    """Back to the same agency with fresh deadlines counted from now."""
    a = deadlines.assigned(catalog, t["region"], t["agency"], t["category"], now)
    state = lifecycle.apply(state, TicketReopened.EVENT_TYPE, lifecycle.next_seq(state)).state
    row = await db.update(conn, t, now, **state_columns(state), acknowledged_at=None,
                          resolved_at=None, dispute_until=None, paused_at=None,
                          acknowledge_by=a.acknowledge_by, resolve_by=a.resolve_by, warned=[])
    await emit(conn, row, TicketReopened(agency=row["agency"], reason=reason or "reopened",
                                         deadlines=_deadlines(row)), now, "router")


HANDLED = frozenset({
    "complaint.submitted", "complaint.info_added", "complaint.feedback_given",
    "complaint.withdrawn", "case.escalated", "finding.recorded", "case.reopened",
    "deadline.breached", "deadline.warning", "complaint.supported", "case.closed",
    "case.archived", "case.info_reminder",
})
