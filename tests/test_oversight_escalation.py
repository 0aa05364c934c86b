"""Deadlines and escalation with a controllable clock: warning, breach (level 1),
level 2; acknowledgement, pause/resume, transfer and resolution moving or cancelling
what is pending; a restart while a deadline passes; two schedulers at once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from services.oversight.clock import ManualClock
from services.oversight.scheduler import Scheduler
from tests.support.oversight import (
    ACK_DUE,
    ACK_LEVEL2,
    ACK_WARN,
    MONDAY_9,
    OTHER_AGENCY,
    RESOLVE_DUE,
    acknowledged,
    clock_resumed,
    feed,
    info_requested,
    make_ctx,
    new_cid,
    open_pool,
    outbox_events,
    resolved,
    routed,
    submitted,
    transferred,
    types,
)


async def test_warning_breach_and_level2_fire_once_each_at_their_time(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        pending = await pool.fetch(
            "SELECT step, fire_at FROM oversight.deadlines WHERE complaint_id = $1"
            " AND status = 'pending' ORDER BY fire_at", cid)
        assert [(r["step"], r["fire_at"]) for r in pending] == [
            ("warning", ACK_WARN), ("breach", ACK_DUE)]

        clock.set(ACK_WARN - timedelta(seconds=1))
        assert (await scheduler.sweep()).fired == 0
        clock.set(ACK_WARN)
        assert (await scheduler.sweep()).fired == 1
        assert types(await outbox_events(pool, cid)) == [("deadline.warning", "acknowledge")]
        assert (await scheduler.sweep()).fired == 0  # nothing twice

        clock.set(ACK_DUE + timedelta(seconds=1))
        assert (await scheduler.sweep()).fired == 1
        events = await outbox_events(pool, cid)
        assert types(events)[1:] == [("deadline.breached", "acknowledge"),
                                     ("case.escalated", 1)]
        assert events[2]["payload"]["agency"] == "MDN-DISDUKCAPIL"
        queue = await pool.fetch("SELECT reason FROM oversight.review_items"
                                 " WHERE complaint_id = $1", cid)
        assert [r["reason"] for r in queue] == ["breach"]
        level2 = await pool.fetchval(
            "SELECT fire_at FROM oversight.deadlines WHERE complaint_id = $1"
            " AND step = 'escalation2'", cid)
        assert level2 == ACK_LEVEL2

        clock.set(ACK_LEVEL2 - timedelta(seconds=1))
        assert (await scheduler.sweep()).fired == 0
        clock.set(ACK_LEVEL2)
        assert (await scheduler.sweep()).fired == 1
        assert types(await outbox_events(pool, cid))[3:] == [("case.escalated", 2)]
        clock.advance(timedelta(days=30))
        assert (await scheduler.sweep()).fired == 0
    finally:
        await pool.close()


async def test_acknowledgement_cancels_the_acknowledge_clock_and_keeps_resolve(
    database_url: str,
) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9),
                   routed(cid, MONDAY_9, ACK_DUE, RESOLVE_DUE),
                   acknowledged(cid, MONDAY_9 + timedelta(hours=2), RESOLVE_DUE))
        clock.set(ACK_DUE + timedelta(hours=1))
        await scheduler.sweep()
        # Only the resolve clock's warning may have fired by now; no acknowledge step.
        assert await outbox_events(pool, cid) == []
        clock.set(RESOLVE_DUE - timedelta(hours=1))
        await scheduler.sweep()
        clock.set(RESOLVE_DUE)
        await scheduler.sweep()
        assert types(await outbox_events(pool, cid)) == [
            ("deadline.warning", "resolve"), ("deadline.breached", "resolve"),
            ("case.escalated", 1)]
    finally:
        await pool.close()


async def test_breach_after_acknowledgement_is_cancelled_before_level2(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        clock.set(ACK_DUE)
        await scheduler.sweep()
        # First the breach must really have fired and scheduled level 2; otherwise
        # "no level 2" below would hold for the wrong reason.
        # (The warning is not sent once the breach itself is due.)
        assert types(await outbox_events(pool, cid)) == [
            ("deadline.breached", "acknowledge"), ("case.escalated", 1)]
        assert await pool.fetchval(
            "SELECT status FROM oversight.deadlines WHERE complaint_id = $1"
            " AND step = 'escalation2'", cid) == "pending"
        await feed(pool, ctx, acknowledged(cid, ACK_DUE + timedelta(hours=1)))
        assert await pool.fetchval(
            "SELECT status FROM oversight.deadlines WHERE complaint_id = $1"
            " AND step = 'escalation2'", cid) != "pending"
        clock.set(ACK_LEVEL2 + timedelta(days=1))
        assert (await scheduler.sweep()).fired == 0
        assert ("case.escalated", 2) not in types(await outbox_events(pool, cid))
    finally:
        await pool.close()


async def test_pause_stops_the_clock_and_resume_sets_the_new_deadline(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9),
                   routed(cid, MONDAY_9, ACK_DUE, RESOLVE_DUE),
                   acknowledged(cid, MONDAY_9 + timedelta(hours=1), RESOLVE_DUE),
                   info_requested(cid, MONDAY_9 + timedelta(hours=2)))
        clock.set(RESOLVE_DUE + timedelta(days=1))
        await scheduler.sweep()
        assert await outbox_events(pool, cid) == []  # paused: nothing falls due
        new_due = RESOLVE_DUE + timedelta(days=3)
        await feed(pool, ctx, clock_resumed(cid, RESOLVE_DUE + timedelta(days=1), None, new_due))
        await scheduler.sweep()
        assert await outbox_events(pool, cid) == []
        clock.set(new_due)
        await scheduler.sweep()
        events = await outbox_events(pool, cid)
        assert ("deadline.breached", "resolve") in types(events)
        breached = [e for e in events if e["type"] == "deadline.breached"]
        assert len(breached) == 1
        assert datetime.fromisoformat(breached[0]["payload"]["due_at"]) == new_due
    finally:
        await pool.close()


async def test_transfer_moves_deadlines_to_the_new_agency(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        new_ack = ACK_DUE + timedelta(days=2)
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None),
                   transferred(cid, MONDAY_9 + timedelta(hours=3), new_ack,
                               RESOLVE_DUE + timedelta(days=7)))
        clock.set(ACK_DUE + timedelta(hours=1))
        await scheduler.sweep()
        assert ("deadline.breached", "acknowledge") not in types(await outbox_events(pool, cid))
        clock.set(new_ack)
        await scheduler.sweep()
        breached = [e for e in await outbox_events(pool, cid)
                    if e["type"] == "deadline.breached"]
        assert len(breached) == 1
        assert breached[0]["payload"]["agency"] == OTHER_AGENCY
    finally:
        await pool.close()


async def test_resolution_cancels_everything_pending(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9),
                   routed(cid, MONDAY_9, ACK_DUE, RESOLVE_DUE),
                   resolved(cid, MONDAY_9 + timedelta(hours=5)))
        clock.set(RESOLVE_DUE + timedelta(days=30))
        # No warning, breach or escalation of the agency's clocks: only the dispute
        # window, which passed in silence and closes the case.
        assert (await scheduler.sweep()).fired == 1
        assert [e["type"] for e in await outbox_events(pool, cid)] == ["case.closed"]
        left = await pool.fetchval("SELECT count(*) FROM oversight.deadlines"
                                   " WHERE complaint_id = $1 AND status = 'pending'", cid)
        assert left == 0
    finally:
        await pool.close()


async def test_repeated_deadline_does_not_restart_the_ladder(database_url: str) -> None:
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        clock.set(ACK_DUE)
        await scheduler.sweep()
        # The router repeats the same deadline (e.g. a duplicate routed event with a new id).
        await feed(pool, ctx, routed(cid, MONDAY_9, ACK_DUE, None))
        await scheduler.sweep()
        assert [t for t in types(await outbox_events(pool, cid))
                if t[0] == "deadline.breached"] == [("deadline.breached", "acknowledge")]
    finally:
        await pool.close()


async def test_two_schedulers_on_separate_pools_escalate_each_case_exactly_once(
    database_url: str,
) -> None:
    pools = [await open_pool(database_url) for _ in range(2)]
    try:
        ctx, clock = make_ctx()
        cids = [new_cid() for _ in range(60)]
        for cid in cids:
            await feed(pools[0], ctx, submitted(cid, MONDAY_9),
                       routed(cid, MONDAY_9, ACK_DUE, None))
        clock.set(ACK_LEVEL2 + timedelta(days=1))
        schedulers = [Scheduler(p, ctx.catalog, clock, batch_size=7) for p in pools]
        # Several rounds of both at once: warnings, breaches, then level 2.
        for _ in range(4):
            await asyncio.gather(*(s.sweep() for s in schedulers for _ in range(3)))
        events = await outbox_events(pools[0])
        for cid in cids:
            mine = [e for e in events if e["complaint_id"] == cid]
            assert types(mine) == [("deadline.breached", "acknowledge"),
                                   ("case.escalated", 1), ("case.escalated", 2)], cid
        fired = await pools[0].fetchval(
            "SELECT count(*) FROM oversight.deadlines WHERE status = 'fired'")
        assert fired == 2 * len(cids)
    finally:
        for p in pools:
            await p.close()


def test_manual_clock_refuses_naive_time() -> None:
    import pytest

    with pytest.raises(ValueError):
        ManualClock().set(datetime(2026, 1, 1))  # noqa: DTZ001

