"""Deadlines against the rest of a case's life: the scheduler meeting a case the
consumer holds (one connection keeps the case row locked, another sweeps), a
withdrawal cancelling every pending step, a reopening scheduling fresh ones."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from services.oversight.domain import Context, apply_event, lock_case
from services.oversight.scheduler import Scheduler
from tests.support.oversight import (
    ACK_DUE,
    ACK_LEVEL2,
    MONDAY_9,
    RESOLVE_DUE,
    acknowledged,
    feed,
    make_ctx,
    new_cid,
    open_pool,
    outbox_events,
    reopened,
    resolved,
    routed,
    submitted,
    types,
    withdrawn,
)


async def pending(pool: asyncpg.Pool, cid: str) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT kind, step FROM oversight.deadlines WHERE complaint_id = $1"
                            " AND status = 'pending' ORDER BY fire_at", cid)
    return [(r["kind"], r["step"]) for r in rows]


async def _race(database_url: str, *, commit_acknowledgement: bool) -> tuple[
        list[tuple[str, object]], int, int]:
    """The consumer holds the case (a transaction with the case row locked) while a
    sweep runs in another connection past the acknowledge deadline. The consumer then
    applies the acknowledgement and commits, or gives up (rolls back). Returns the
    case's oversight events after a second sweep, and the first sweep's deferred and
    fired counts."""
    pool = await open_pool(database_url)
    sweeper = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        ack = acknowledged(cid, ACK_DUE - timedelta(minutes=1))
        clock.set(ACK_DUE + timedelta(seconds=1))
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await lock_case(conn, cid)  # as the consumer does first
                first = await Scheduler(sweeper, ctx.catalog, clock).sweep()
                if commit_acknowledgement:
                    await _apply(conn, ctx, ack)
            except BaseException:
                await tx.rollback()
                raise
            if commit_acknowledgement:
                await tx.commit()
            else:
                await tx.rollback()
        await Scheduler(sweeper, ctx.catalog, clock).sweep()
        return types(await outbox_events(pool, cid)), first.deferred, first.fired
    finally:
        await sweeper.close()
        await pool.close()


async def _apply(conn: asyncpg.Connection, ctx: Context, envelope: object) -> None:
    inserted = await conn.fetchval(
        "INSERT INTO oversight.processed_events (consumer, event_id) VALUES"
        " ('oversight', $1) ON CONFLICT DO NOTHING RETURNING 1",
        envelope.event_id)  # type: ignore[attr-defined]
    assert inserted
    await apply_event(conn, ctx, envelope)  # type: ignore[arg-type]


async def test_sweep_defers_a_held_case_and_never_breaches_an_acknowledgement_of_that_instant(
        database_url: str) -> None:
    events, deferred, fired = await _race(database_url, commit_acknowledgement=True)
    # The warning and the breach were both due: the sweep left both for later ...
    assert (deferred, fired) == (2, 0)
    # ... and once the acknowledgement committed there was nothing left to fire.
    assert events == []


async def test_a_deferred_step_fires_on_the_next_sweep_when_nothing_changed(
        database_url: str) -> None:
    # The same race, but the consumer gives up: the deferred breach is not lost.
    events, deferred, fired = await _race(database_url, commit_acknowledgement=False)
    assert (deferred, fired) == (2, 0)
    assert events == [("deadline.breached", "acknowledge"), ("case.escalated", 1)]


async def test_withdrawal_cancels_every_pending_step_including_level2(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9),
                   routed(cid, MONDAY_9, ACK_DUE, RESOLVE_DUE))
        clock.set(ACK_DUE)
        assert (await scheduler.sweep()).fired == 1  # the acknowledge breach
        assert ("acknowledge", "escalation2") in await pending(pool, cid)
        assert ("resolve", "breach") in await pending(pool, cid)
        await feed(pool, ctx, withdrawn(cid, ACK_DUE + timedelta(hours=1)))
        assert await pending(pool, cid) == []
        assert await pool.fetchval("SELECT status FROM oversight.cases"
                                   " WHERE complaint_id = $1", cid) == "withdrawn"
        before = await outbox_events(pool, cid)
        clock.set(ACK_LEVEL2 + timedelta(days=60))
        assert (await scheduler.sweep()).fired == 0
        assert await outbox_events(pool, cid) == before
    finally:
        await pool.close()


async def test_reopening_schedules_a_fresh_resolve_clock(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        at = MONDAY_9 + timedelta(hours=1)
        await feed(pool, ctx, submitted(cid, MONDAY_9),
                   routed(cid, MONDAY_9, ACK_DUE, RESOLVE_DUE),
                   acknowledged(cid, at, RESOLVE_DUE), resolved(cid, at + timedelta(hours=1)))
        # Resolved: only the dispute window runs (its end closes the case).
        assert await pending(pool, cid) == [("dispute", "close")]
        new_due = RESOLVE_DUE + timedelta(days=7)
        await feed(pool, ctx, reopened(cid, at + timedelta(days=1), new_due))
        assert await pending(pool, cid) == [("resolve", "warning"), ("resolve", "breach")]
        due = await pool.fetchval("SELECT due_at FROM oversight.deadlines WHERE complaint_id"
                                  " = $1 AND status = 'pending' AND step = 'breach'", cid)
        assert due == new_due
        clock.set(RESOLVE_DUE + timedelta(days=1))  # the old deadline passes: nothing
        await scheduler.sweep()
        assert ("deadline.breached", "resolve") not in types(await outbox_events(pool, cid))
        clock.set(new_due)
        await scheduler.sweep()
        breached = [e for e in await outbox_events(pool, cid)
                    if e["type"] == "deadline.breached"]
        assert len(breached) == 1 and breached[0]["payload"]["kind"] == "resolve"
    finally:
        await pool.close()
