"""The router's queries on ``router.tickets`` and ``router.timeline``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from services.router import deadlines
from services.router.errors import TicketNotFound

DUE_SOON = timedelta(hours=24)


def parse_id(value: str) -> uuid.UUID:
    """A ticket id from a URL; anything that is not a UUID is simply not found."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise TicketNotFound() from None


async def lock_ticket(conn: asyncpg.Connection, ticket_id: str, *,
                      agency: str | None = None, triage_region: str | None = None,
                      triage: bool = False) -> asyncpg.Record:
    """Lock and return a ticket for a change (``SELECT ... FOR UPDATE``: two staff
    acting at once, or a staff member and the consumer, serialise on the row, so
    each sees the other's status and the events go out in commit order).

    With ``agency`` only that agency's ticket is found; with ``triage`` only a ticket
    in the triage queue (of ``triage_region`` if given). Raises ``TicketNotFound``
    otherwise, the same whether the ticket does not exist or belongs to another.
    """
    tid = parse_id(ticket_id)
    if triage:
        row = await conn.fetchrow(
            "SELECT * FROM router.tickets WHERE id = $1 AND status = 'triage'"
            " AND ($2::text IS NULL OR region = $2) FOR UPDATE",
            tid, triage_region,
        )
    else:
        row = await conn.fetchrow(
            "SELECT * FROM router.tickets WHERE id = $1 AND agency = $2 FOR UPDATE",
            tid, agency,
        )
    if row is None:
        raise TicketNotFound()
    return row


async def lock_by_complaint(conn: asyncpg.Connection, complaint_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM router.tickets WHERE complaint_id = $1 FOR UPDATE", complaint_id
    )


async def get_for_agency(conn: asyncpg.Connection | asyncpg.Pool, ticket_id: str,
                         agency: str | None) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM router.tickets WHERE id = $1 AND agency = $2",
        parse_id(ticket_id), agency,
    )
    if row is None:
        raise TicketNotFound()
    return row


async def update(conn: asyncpg.Connection, current: asyncpg.Record, now: datetime,
                 **changes: Any) -> asyncpg.Record:
    """Apply ``changes`` to a locked ticket; recomputes ``next_due``; returns the row."""
    merged = dict(current) | changes
    changes["next_due"] = deadlines.next_due(
        merged["status"], merged["triage_by"], merged["acknowledge_by"],
        merged["resolve_by"], merged["acknowledged_at"] is not None,
    )
    changes["updated_at"] = now
    columns = list(changes)
    assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    row = await conn.fetchrow(
        f"UPDATE router.tickets SET {assignments} WHERE id = $1 RETURNING *",
        current["id"], *(changes[c] for c in columns),
    )
    assert row is not None
    return row


async def add_timeline(conn: asyncpg.Connection, ticket_id: uuid.UUID, kind: str,
                       occurred_at: datetime, actor: str, agency: str | None,
                       data: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO router.timeline (ticket_id, kind, occurred_at, actor, agency, data)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        ticket_id, kind, occurred_at, actor, agency, data or {},
    )


async def timeline(conn: asyncpg.Connection | asyncpg.Pool,
                   ticket_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT kind, occurred_at, actor, agency, data FROM router.timeline"
        " WHERE ticket_id = $1 ORDER BY id", ticket_id,
    )


Sort = Literal["created", "-created", "deadline", "support"]


@dataclass(frozen=True, slots=True)
class Filters:
    status: str | None = None
    overdue: bool | None = None
    due_soon: bool | None = None
    warned: bool | None = None
    category: str | None = None
    tracking_code: str | None = None
    escalated: bool | None = None
    sort: Sort = "-created"
    limit: int = 50
    offset: int = 0


async def list_tickets(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, f: Filters, *,
                       agency: str | None = None, triage_region: str | None = None,
                       triage: bool = False) -> list[asyncpg.Record]:
    """One agency's tickets (or the triage queue, of one region or all) matching ``f``."""
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if triage:
        where.append("status = 'triage'")
        if triage_region is not None:
            where.append(f"region = {arg(triage_region)}")
    else:
        where.append(f"agency = {arg(agency)}")
    if f.status:
        where.append(f"status = {arg(f.status)}")
    if f.category:
        where.append(f"category = {arg(f.category)}")
    if f.tracking_code:
        where.append(f"tracking_code = {arg(f.tracking_code)}")
    if f.overdue is not None:
        cond = f"next_due < {arg(now)}"
        where.append(cond if f.overdue else f"NOT coalesce({cond}, false)")
    if f.warned:
        # Oversight warned about a clock still running (the queue's badge).
        where.append("cardinality(warned) > 0")
    if f.due_soon:
        where.append(f"next_due >= {arg(now)} AND next_due < {arg(now + DUE_SOON)}")
    if f.escalated:
        where.append("(escalation_level > 0 OR cardinality(breached) > 0)")
    order = {
        "created": "created_at, id",
        "-created": "created_at DESC, id",
        "deadline": "next_due NULLS LAST, created_at DESC, id",
        # Citizens' supports as a priority signal (public reports only have any).
        "support": "support_count DESC, created_at DESC, id",
    }[f.sort]
    sql = (f"SELECT * FROM router.tickets WHERE {' AND '.join(where)} ORDER BY {order}"
           f" LIMIT {arg(f.limit)} OFFSET {arg(f.offset)}")
    return await conn.fetch(sql, *args)


async def transferred_by(conn: asyncpg.Connection | asyncpg.Pool, agency: str | None,
                         limit: int = 200) -> list[asyncpg.Record]:
    """What ``agency`` transferred away (or sent back to triage), newest first, with
    where each ticket stands now: the sending agency's read-only view."""
    return list(await conn.fetch(
        "SELECT t.id, t.tracking_code, t.category, t.title, t.status, t.agency,"
        " l.occurred_at AS transferred_at, l.kind, l.data FROM router.timeline l"
        " JOIN router.tickets t ON t.id = l.ticket_id"
        " WHERE l.kind IN ('ticket.transferred', 'ticket.returned_to_triage')"
        " AND l.agency = $1 ORDER BY l.occurred_at DESC, l.id DESC LIMIT $2",
        agency, limit))


async def notifications(conn: asyncpg.Connection | asyncpg.Pool, agency: str | None,
                        audiences: tuple[str, ...], limit: int = 200) -> list[asyncpg.Record]:
    """The desk's notifications for ``agency`` and ``audiences``, newest first."""
    return list(await conn.fetch(
        "SELECT * FROM router.notifications WHERE agency = $1 AND audience = ANY($2::text[])"
        " ORDER BY created_at DESC, id DESC LIMIT $3", agency, list(audiences), limit))
