"""Who in the agency works a ticket.

The one rule (``check``), read by the API, the bulk action and the desk page:

| caller | may set the assignee to |
| --- | --- |
| head | any active staff member or head of the ticket's agency, or nobody |
| staff | themselves, while nobody has it (take it); nobody, while they have it (give it back) |
| anyone else | nothing (the ticket endpoints are for the agency's roles only) |

An assignment is an action like the others: the ticket row is locked, the change,
its timeline entry and its event (``ticket.assignee_changed``, on the router's
topic with the complaint's next sequence number; the panel sees it on the case, the
citizen never does) commit together. Setting the assignee it already has changes
nothing and emits nothing. A ticket that leaves the agency (transfer, back to
triage) loses its assignee.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from awasi import lifecycle
from awasi.catalog import Catalog
from awasi.events.payloads import TicketAssigneeChanged
from awasi.identity import User, agency_members
from services.router import db, domain
from services.router.errors import (
    AlreadyAssigned,
    AssignNotAllowed,
    InvalidTransition,
    NotAgencyMember,
)

# Statuses in which a ticket is still the agency's work (assignment makes sense).
ASSIGNABLE = frozenset(lifecycle.WITH_AGENCY)


def check(user: User, current: str | None, target: str | None) -> None:
    """Raise ``AssignNotAllowed`` or ``AlreadyAssigned`` if ``user`` may not change
    the assignee from ``current`` to ``target`` (membership is checked apart)."""
    if user.role == "head":
        return
    if user.role != "staff":
        raise AssignNotAllowed("Only the agency's staff and heads assign tickets")
    if target == user.username:
        if current is not None and current != user.username:
            raise AlreadyAssigned(current)
        return
    if target is None and current == user.username:
        return
    raise AssignNotAllowed("Staff may only take an unassigned ticket or give back their own;"
                           " the agency's head assigns others")


async def assign(conn: asyncpg.Connection, catalog: Catalog, user: User, ticket_id: str,
                 username: str | None, now: datetime) -> asyncpg.Record:
    """Set the ticket's assignee to ``username`` (None: nobody). Raises
    ``TicketNotFound`` (not the caller's agency's), ``InvalidTransition`` (the
    ticket is no longer the agency's work), ``AssignNotAllowed``,
    ``AlreadyAssigned`` or ``NotAgencyMember``; nothing is written then."""
    t = await db.lock_ticket(conn, ticket_id, agency=user.agency)
    if t["status"] not in ASSIGNABLE:
        raise InvalidTransition("assign", t["status"])
    check(user, t["assignee"], username)
    if username is not None and not await agency_members(conn, t["agency"], username):
        raise NotAgencyMember(username)
    if username == t["assignee"]:
        return t
    state = domain.state_of(t)
    step = lifecycle.apply(state, TicketAssigneeChanged.EVENT_TYPE, lifecycle.next_seq(state))
    row = await db.update(conn, t, now, seq=step.state.seq, assignee=username)
    await domain.emit(conn, row, TicketAssigneeChanged(
        agency=row["agency"], assignee=username, previous=t["assignee"]), now, user.username)
    return row
