"""Every statement a consumer runs per event uses an index, however long the history.

How: complaints are worked through the whole lifecycle (submitted, routed or triaged,
acknowledged, asked, answered, transferred, resolved, rated, disputed, reopened by the
panel, deadlines warned and breached, withdrawn) with the three services' real
handlers behind the real ``IdempotentConsumer`` (its fast path: the dedupe records
and the effects in one transaction). That history is then multiplied into thousands
of complaints (``tests/support/plans.grow``) and analysed. Then a fresh set of
complaints goes through the same script while an asyncpg query logger records every
statement the consumers execute; each one is EXPLAINed with the arguments it ran
with, and any sequential scan of a table that grows with history fails the test.
A new query in a handler is therefore checked without anyone listing it here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from awasi.db import create_pool
from awasi.events.consumer import IdempotentConsumer
from awasi.events.envelope import Envelope
from services.intake import domain as intake
from services.intake.telegram import store as telegram_store
from services.oversight import chain
from tests.support.lifecycle import (
    World,
    citizen,
    handler,
    new_world,
    panel_reopen,
    pool,
    staff,
    triage,
)
from tests.support.plans import FIXED, StatementLog, explain, grow, seq_scans

__all__ = ["pool"]  # the fixture, used by name

# History: the script's complaints times this many copies (tens of thousands of rows
# in the busiest tables: enough that a sequential scan is the planner's last choice
# only when an index matches).
COPIES = 1000
# A table with fewer rows is too small to judge (the planner rightly reads a few pages
# whole, index or not): the test fails rather than pass without judging it.
MIN_ROWS = 1000
SCHEMAS = ("intake", "router", "oversight")


def consumers(world: World, p: asyncpg.Pool) -> dict[str, IdempotentConsumer]:
    """Each service's consumer as its app wires it, on pool ``p``. No broker: the
    records are handed to its transaction directly (``deliver``)."""
    out = {}
    for reader in ("intake", "router", "oversight"):
        accepts, handle = handler(world, reader)
        out[reader] = IdempotentConsumer(
            name=reader, schema=reader, pool=p, consumer=cast(Any, None),
            producer=cast(Any, None), handler=handle, accepts=accepts,
            prepare=chain.prepare if reader == "oversight" else None)
    return out


def record(topic: str, env: Envelope) -> ConsumerRecord[bytes, bytes]:
    value = env.to_bytes()
    return ConsumerRecord(topic=topic, partition=0, offset=0, timestamp=0, timestamp_type=0,
                          key=env.complaint_id.encode(), value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=len(value),
                          headers=())


async def drain(world: World, readers: dict[str, IdempotentConsumer]) -> None:
    """Deliver every pending event, in a fixed order, through the real consumer."""
    await world.publish()
    while todo := sorted(world.pending()):
        for reader, topic, cid in todo:
            stream = world.stream(topic, cid)
            done = world.cursor.get((reader, topic, cid), 0)
            world.cursor[(reader, topic, cid)] = done + 1
            # The fast path, as a backlog read from the broker would run it.
            await readers[reader]._apply_together([record(topic, stream[done])])
        await world.publish()


async def add_complaints(world: World, n: int, category: str) -> list[str]:
    """``n`` complaints submitted as the Telegram bot submits them (the chat's report
    row first, then the complaint under its Idempotency-Key), so intake's consumer
    looks up the chat to notify."""
    out = []
    for _ in range(n):
        key = uuid.uuid4().hex
        async with world.pool.acquire() as conn:
            await telegram_store.add_report(conn, key, 4242)
        receipt = await intake.submit_complaint(
            world.pool, world.catalog, world.settings,
            intake.SubmitCommand(region="MDN", category=category,
                                 description="Pungutan liar di kantor kelurahan.",
                                 idempotency_key=key, request_hash=b"h18"))
        async with world.pool.acquire() as conn:
            await telegram_store.report_submitted(conn, key,
                                                  uuid.UUID(receipt.complaint_id))
        world.complaints.append((receipt.complaint_id, receipt.tracking_code,
                                 receipt.secret))
        out.append(receipt.complaint_id)
    await world.publish()
    return out


async def life(world: World, readers: dict[str, IdempotentConsumer], scheduler: Any,
               clock: Any) -> None:
    """Every kind of event the lifecycle has, for a fresh batch of complaints."""
    routed = await add_complaints(world, 3, "asn-pungli")
    await drain(world, readers)
    for cid in routed:
        await triage(world, "route", cid)  # those left in the triage queue
    await drain(world, readers)
    a, b, c = routed
    for step in (
        [("staff", "acknowledge", a), ("staff", "acknowledge", b)],
        [("staff", "request_info", a), ("staff", "transfer", c)],
        [("citizen", "add_info", a), ("staff", "respond", b)],
        [("staff", "resolve", a), ("staff", "resolve", b)],
        [("citizen", "rate", a), ("citizen", "dispute", b)],
        [("panel", "reopen", a), ("citizen", "withdraw", c)],
    ):
        for who, action, cid in step:
            if who == "staff":
                await staff(world, action, cid)
            elif who == "citizen":
                await citizen(world, action, cid)
            else:
                await panel_reopen(world, cid)
        await drain(world, readers)
    # Time passes: warnings, breaches, escalations, closings; then their events.
    late = await add_complaints(world, 2, "asn-pungli")
    await drain(world, readers)
    for days in (2, 4, 10, 20):
        clock.set(clock.now() + timedelta(days=days))
        await scheduler.sweep()
        await drain(world, readers)
    await triage(world, "reject", late[1])
    await drain(world, readers)


@pytest.fixture
async def capture_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    # One connection, so the query logger on it sees every statement of the pool.
    p = await create_pool(database_url, min_size=1, max_size=1)
    try:
        yield p
    finally:
        await p.close()


async def test_no_consumer_statement_scans_a_growing_table(
        pool: asyncpg.Pool, capture_pool: asyncpg.Pool, database_url: str) -> None:
    world, clock, scheduler = await new_world(pool, database_url, complaints=0)
    await life(world, consumers(world, pool), scheduler, clock)
    async with pool.acquire() as conn:
        sizes = await grow(conn, SCHEMAS, COPIES)
        # The copies are history, not news: the topics go on from the newest row.
        for topic in world.seen:
            world.seen[topic] = await conn.fetchval(f'SELECT count(*) FROM "{topic}".outbox')
    assert sizes["oversight.deadlines"] > 10_000, sizes

    log = StatementLog()
    async with capture_pool.acquire() as conn:
        conn.add_query_logger(log)
    await life(world, consumers(world, capture_pool), scheduler, clock)
    async with capture_pool.acquire() as conn:
        conn.remove_query_logger(log)

    statements = list(log)
    # The script reached every service's consumer and the per-event paths that grow.
    text = "\n".join(q for q, _ in statements)
    for expected in ('"intake".processed_events', '"router".processed_events',
                     '"oversight".processed_events', "oversight.deadlines",
                     "oversight.timeline", "router.tickets", "step = 'breach'"):
        assert expected in text, f"no statement touched {expected}"

    bad = []
    async with pool.acquire() as conn:
        for query, args in statements:
            plan = await explain(conn, query, args)
            # Our schemas only: asyncpg's own type introspection reads pg_catalog.
            scans = [t for t in seq_scans(plan) if t.partition(".")[0] in SCHEMAS
                     and t.rpartition(".")[2] not in FIXED]
            for table in scans:
                why = ("too few rows to judge" if sizes[table] < MIN_ROWS
                       else "sequential scan")
                bad.append(f"{table} ({why}, {sizes[table]} rows,"
                           f" {log.slowest[query] * 1000:.1f} ms): {query}")
    assert not bad, "per-event statements without a matching index:\n" + "\n".join(bad)
