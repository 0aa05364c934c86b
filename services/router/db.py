"""The router's queries on ``router.tickets`` and ``router.timeline``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg

from awasi import similarity, textsearch
from awasi.web import keyset
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

# Each sort's keys, all in one direction, the id last (unique): a keyset page is the
# row comparison "(keys) after (the previous page's last keys)", which the matching
# index of 0900_desk.sql answers with one range scan. "deadline": the next deadline
# first, tickets with none last (coalesce to infinity, as the index does).
_DUE = "coalesce(next_due, 'infinity'::timestamptz)"
SORT_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "-created": (("created_at", "id"), "DESC"),
    "created": (("created_at", "id"), "ASC"),
    "deadline": ((_DUE, "created_at", "id"), "ASC"),
    # Citizens' supports as a priority signal (public reports only have any).
    "support": (("support_count", "created_at", "id"), "DESC"),
}


def _ts(value: Any) -> datetime:
    out = datetime.fromisoformat(value)
    if out.tzinfo is None:
        raise ValueError("naive")
    return out


def _due(value: Any) -> datetime | None:
    return None if value is None else _ts(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("not an int")
    return value


# How each sort's key values come back from a token (the id is a UUID).
_PARSE: dict[str, tuple[Any, ...]] = {
    "-created": (_ts, uuid.UUID), "created": (_ts, uuid.UUID),
    "deadline": (_due, _ts, uuid.UUID), "support": (_int, _ts, uuid.UUID),
}
# Counting stops here; beyond it the planner's estimate is given instead (counting a
# million rows on every queue read would cost more than the page itself).
EXACT_COUNT_CAP = 1000


def page_token(sort: str, row: asyncpg.Record) -> str:
    """The ``after`` token of the page that follows ``row``."""
    values: list[Any] = {
        "-created": lambda: [row["created_at"].isoformat()],
        "created": lambda: [row["created_at"].isoformat()],
        "deadline": lambda: [row["next_due"].isoformat() if row["next_due"] else None,
                             row["created_at"].isoformat()],
        "support": lambda: [row["support_count"], row["created_at"].isoformat()],
    }[sort]()
    return keyset.encode(sort, [*values, str(row["id"])])


def parse_after(sort: str, token: str | None) -> tuple[Any, ...] | None:
    """The keys in an ``after`` token for ``sort``; 422 naming ``after`` if invalid."""
    return None if token is None else keyset.decode(token, sort, _PARSE[sort])


# The text pg_trgm's index covers (0910_desk_trigram.sql), as that index spells it.
TEXT = "lower(tracking_code || ' ' || coalesce(title, '') || ' ' || description)"


has_trigram = similarity.has_trigram


@dataclass(frozen=True, slots=True)
class Filters:
    status: str | None = None
    overdue: bool | None = None
    due_soon: bool | None = None
    warned: bool | None = None
    category: str | None = None
    tracking_code: str | None = None
    escalated: bool | None = None
    # A username (assigned to them), or "" for nobody.
    assignee: str | None = None
    # A full-text query (awasi.textsearch.prefix_query) over code, title and text.
    q: str | None = None
    # With pg_trgm: the same words as LIKE patterns (awasi.textsearch.like_patterns),
    # so a word also matches inside another; a ticket matches either way.
    like: tuple[str, ...] | None = None
    # Search through the index of agency-scoped words (``rare_in_agency`` decides).
    scoped: bool = False
    sort: Sort = "-created"
    limit: int = 50
    offset: int = 0
    # Keyset: the keys of the last row of the previous page (parse_after).
    after: tuple[Any, ...] | None = None


def _where(now: datetime, f: Filters, agency: str | None, triage_region: str | None,
           triage: bool) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if triage:
        where.append("status = 'triage'")
        if triage_region is not None:
            where.append(f"region = {arg(triage_region)}")
    elif f.q and f.scoped:
        # The scoped words already hold only this agency's tickets; the agency is
        # still checked, but written so that no index serves it: as an index
        # condition the planner ANDed the agency's whole btree range (100,000 entries)
        # into the few matches of the scoped index (measured, bench/desk.py).
        where.append(f"(agency || '') = {arg(agency)}")
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
    if f.assignee is not None:
        where.append(f"assignee = {arg(f.assignee)}" if f.assignee else "assignee IS NULL")
    if f.q:
        where.append(_text_match(f, None if triage else agency, args))
    return where, args


def _text_match(f: Filters, agency: str | None, args: list[Any]) -> str:
    """The condition on the words of ``f.q`` (and ``f.like``), its parameters
    appended to ``args``."""
    assert f.q is not None

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    words = _words_match(f.q, agency, f.scoped, arg)
    return f"({words} OR {TEXT} LIKE ALL ({arg(list(f.like))}::text[]))" if f.like else words


def _words_match(q: str, agency: str | None, scoped: bool,
                 arg: Callable[[Any], str]) -> str:
    """The full-text condition: the plain words, or (``scoped``, in one agency's
    tickets) the same query with every lexeme scoped by the agency
    (``'MDN-PUPR:jalan':*``) against the index of agency-scoped words (migration
    1200; both SQL functions are there)."""
    if scoped and agency is not None:
        return (f"router.scoped_words(agency, search) @@ router.scoped_query("
                f"{arg(agency)}, {textsearch.sql_query(arg(q))})")
    return f"search @@ {textsearch.sql_query(arg(q))}"


# Below this many matches in the agency a search reads them from the index of
# agency-scoped words and sorts them; from it on it walks the agency's queue in
# order (a page of 50 is then found within about 100,000 x 50 / 1,000 = 5,000
# tickets of even the largest queue). Measured: bench/desk.py.
SCOPED_BELOW = 1000


async def rare_in_agency(conn: asyncpg.Connection | asyncpg.Pool, q: str,
                         agency: str) -> bool:
    """Whether ``agency``'s tickets rarely hold every word of ``q``, by the planner's
    statistics (planning only, no rows read): the rarest word's estimate is under
    ``SCOPED_BELOW``, or that word is not among the statistics' most common scoped
    words at all.

    Why ask: the planner alone estimated a word from the whole table and then
    multiplied by the agency's share, so a word common elsewhere but absent from the
    agency made it walk the agency's whole queue (about 1 s at a million tickets),
    and the scoped index in the same query was underestimated the other way (the
    agency counted twice) and sorted thousands of matches of a common word. The
    statistics of the scoped expression know each word's frequency in the agency
    itself; an AND of words is no more frequent than its rarest. A word missing
    from the most-common list gets a fixed floor (half the least common listed
    frequency; PostgreSQL's ts_selfuncs.c), which grows with the table: at a million
    tickets it was above ``SCOPED_BELOW`` for a word the agency never has. So the
    floor itself (the estimate of a lexeme without the scope's colon, which no
    scoped text has) counts as rare."""
    least = None
    for term in q.split(" & "):  # prefix_query's words, one at a time
        n = await _estimate(conn, "router.scoped_words(agency, search) @@"
                            f" router.scoped_query($1, {textsearch.sql_query('$2')})",
                            [agency, term])
        least = n if least is None else min(least, n)
    if least is None:
        return False
    if least < SCOPED_BELOW:
        return True
    # Every scoped lexeme has a colon: one without is never among the common ones.
    floor = await _estimate(conn, "router.scoped_words(agency, search) @@ 'absent'::tsquery",
                            [])
    return least <= floor


async def plan_search(conn: asyncpg.Connection, f: Filters, agency: str | None) -> Filters:
    """Prepare ``conn``'s transaction for a search page and its estimate, and return
    the filters to read it with (``scoped`` for a word rare in ``agency``). Inside a
    transaction: the settings are ``SET LOCAL``.

    - Planned for its words every time: a generic plan (what a prepared statement
      gets after five runs) cannot know whether a word is common or rare, and chose
      a bitmap scan of every ticket with the word (counts of 0.7-1.3 s at a million
      rows instead of 8-28 ms, bench/desk.py).
    - A word rare in the agency (however common elsewhere) is read from the index of
      agency-scoped words; a common one by walking the agency's queue in the page's
      order (``walk_tickets``, at most ``WALK_BUDGET`` tickets, then ``plan_scoped``),
      and only that: bitmap and sequential scans are off for the walk. The planner's own
      estimate of a prefix query is several times too low for a common word
      (``'sampah':*`` 20,084 rows where ``'sampah'`` is 207,100, at a million
      tickets), so it chose to collect every ticket with the words and sort them (59
      ms for 2,500 matches at 1M, 1.1 s p50 for 25,000 at 10M with a cold cache) over
      a walk that finds a page in a few hundred rows (4.8 ms)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    if agency is None or f.q is None:
        return f
    if await rare_in_agency(conn, f.q, agency):
        return replace(f, scoped=True)
    # The walk, in the page's order, is decided: no bitmap (collect and sort) and no
    # sequential scan (read everything and sort) for the page.
    await conn.execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")
    return f


async def plan_scoped(conn: asyncpg.Connection, f: Filters) -> Filters:
    """After a walk that ran out of its budget (``walk_tickets``): the words are rarer
    in the agency than the statistics said, together or alone (two common words that
    seldom meet), so read their matches from the scoped index after all."""
    await conn.execute("SET LOCAL enable_bitmapscan = on; SET LOCAL enable_seqscan = on")
    return replace(f, scoped=True)


def _page_where(now: datetime, f: Filters, agency: str | None, triage_region: str | None,
                triage: bool) -> tuple[list[str], list[Any], str]:
    """``_where`` plus the keyset condition of ``f.after``, and the ORDER BY."""
    where, args = _where(now, f, agency, triage_region, triage)
    keys, direction = SORT_KEYS[f.sort]
    if f.after is not None:
        start = len(args)
        args.extend(f.after)
        values = [f"${start + i + 1}" for i in range(len(keys))]
        if keys[0] == _DUE:
            values[0] = f"coalesce({values[0]}::timestamptz, 'infinity'::timestamptz)"
        op = "<" if direction == "DESC" else ">"
        where.append(f"({', '.join(keys)}) {op} ({', '.join(values)})")
    return where, args, ", ".join(f"{k} {direction}" for k in keys)


async def list_tickets(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, f: Filters, *,
                       agency: str | None = None, triage_region: str | None = None,
                       triage: bool = False) -> list[asyncpg.Record]:
    """One agency's tickets (or the triage queue, of one region or all) matching ``f``,
    in ``f.sort`` order, from just after ``f.after`` (keyset) or ``f.offset``."""
    where, args, order = _page_where(now, f, agency, triage_region, triage)
    args.extend((f.limit, f.offset))
    sql = (f"SELECT * FROM router.tickets WHERE {' AND '.join(where)} ORDER BY {order}"
           f" LIMIT ${len(args) - 1} OFFSET ${len(args)}")
    return await conn.fetch(sql, *args)


# A search walking the agency's queue reads at most this many of its tickets (in the
# page's order, from the page's start) before it decides the words are rarer there
# than the statistics said and reads their matches from the scoped index instead: a
# page then holds 51 matches in 2,000 tickets (2.5%) or the scoped index has at most
# about that share of the agency's tickets to sort.
WALK_BUDGET = 2000


async def walk_tickets(conn: asyncpg.Connection, now: datetime, f: Filters, agency: str,
                       budget: int = WALK_BUDGET) -> list[asyncpg.Record] | None:
    """The page of a search (``f.q``, not scoped, no offset) by walking at most
    ``budget`` of ``agency``'s tickets in order: the rows, or None when the walk
    ended before the page filled while the queue goes on (the words are rare here:
    read them through the scoped index instead)."""
    where, args, order = _page_where(now, replace(f, q=None, like=None), agency, None, False)
    walked = (f"SELECT * FROM router.tickets WHERE {' AND '.join(where)}"
              f" ORDER BY {order} LIMIT {int(budget)}")
    queue_args = list(args)
    words = _text_match(f, agency, args)
    args.append(f.limit)
    rows = await conn.fetch(f"SELECT * FROM ({walked}) w WHERE {words} ORDER BY {order}"
                            f" LIMIT ${len(args)}", *args)
    if len(rows) >= f.limit:
        return rows
    n = await conn.fetchval(f"SELECT count(*) FROM ({walked}) w", *queue_args)
    return rows if n < budget else None


async def count_tickets(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, f: Filters,
                        *, agency: str | None = None, triage_region: str | None = None,
                        triage: bool = False, exact_up_to: int = EXACT_COUNT_CAP,
                        ) -> tuple[int, bool]:
    """How many tickets match ``f`` (every page together): ``(count, exact)``. Exact up
    to ``exact_up_to``; beyond it the planner's estimate (never below that), so the
    cost stays bounded at a million rows. ``exact_up_to=0``: the estimate alone."""
    where, args = _where(now, f, agency, triage_region, triage)
    cond = " AND ".join(where)
    if exact_up_to <= 0:
        return await _estimate(conn, cond, args), False
    keys, direction = SORT_KEYS[f.sort]
    # In the list's own order: the planner then walks the same index as the page and
    # stops after the cap (measured, bench/desk.py: without it a search counted by
    # a bitmap scan of every ticket with the word, 180 ms at a million rows).
    order = ", ".join(f"{k} {direction}" for k in keys)
    n = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM router.tickets WHERE {cond}"
        f" ORDER BY {order} LIMIT {exact_up_to + 1}) s", *args)
    if n <= exact_up_to:
        return int(n), True
    return max(await _estimate(conn, cond, args), exact_up_to + 1), False


async def _estimate(conn: asyncpg.Connection | asyncpg.Pool, cond: str,
                    args: list[Any]) -> int:
    """The planner's estimate of the rows matching ``cond`` (planning only)."""
    plan = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM router.tickets WHERE {cond}", *args)
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


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
                        audiences: tuple[str, ...], username: str | None = None,
                        limit: int = 200) -> list[asyncpg.Record]:
    """The desk's notifications for ``agency`` and ``audiences``, and those addressed
    to ``username`` (deadline warnings of the tickets assigned to them), newest first."""
    return list(await conn.fetch(
        "SELECT * FROM router.notifications WHERE (agency = $1 AND audience = ANY($2::text[]))"
        " OR (audience = 'assignee' AND username = $3 AND agency = $1)"
        " ORDER BY created_at DESC, id DESC LIMIT $4", agency, list(audiences), username,
        limit))


async def add_note(conn: asyncpg.Connection, ticket: asyncpg.Record, author: str, body: str,
                   now: datetime) -> asyncpg.Record:
    row = await conn.fetchrow(
        "INSERT INTO router.notes (ticket_id, agency, author, body, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        ticket["id"], ticket["agency"], author, body, now)
    assert row is not None
    return row


async def notes(conn: asyncpg.Connection | asyncpg.Pool,
                ticket_id: uuid.UUID) -> list[asyncpg.Record]:
    """A ticket's internal notes, oldest first."""
    return list(await conn.fetch(
        "SELECT * FROM router.notes WHERE ticket_id = $1 ORDER BY id", ticket_id))


async def ticket_by_complaint(conn: asyncpg.Connection | asyncpg.Pool,
                              complaint_id: str) -> asyncpg.Record:
    if "\x00" in complaint_id or len(complaint_id) > 64:
        raise TicketNotFound()  # not an id PostgreSQL could even hold: none such
    row = await conn.fetchrow("SELECT * FROM router.tickets WHERE complaint_id = $1",
                              complaint_id)
    if row is None:
        raise TicketNotFound()
    return row


async def attachments(conn: asyncpg.Connection | asyncpg.Pool,
                      ticket_id: uuid.UUID) -> list[asyncpg.Record]:
    """A ticket's attachments to the citizen, oldest first (metadata, not the bytes)."""
    return list(await conn.fetch(
        "SELECT id, kind, content_type, file_name, size, author, created_at"
        " FROM router.attachments WHERE ticket_id = $1 ORDER BY created_at, id", ticket_id))
