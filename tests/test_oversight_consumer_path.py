"""The oversight unit tests feed events through ``feed()`` (tests/support/oversight.py),
which re-implements the consumer's transaction for speed. This test proves that
shortcut honest: every kind of event those tests feed, for several cases, goes once
through ``feed()`` into one database and once through the real broker and the running
service's ``IdempotentConsumer`` into another, and the two end in the same state
(cases, deadlines, review queue, timeline). The router's events arrive as a backlog
read in one batch, so the consumer's chunked fast path (one transaction, dedupe
records in one statement) is the one that applies them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.payloads import ComplaintNeedsTriage, Deadlines
from awasi.settings import Settings
from services.oversight.clock import ManualClock
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    OTHER_AGENCY,
    RESOLVE_DUE,
    acknowledged,
    clock_resumed,
    env,
    feed,
    feedback,
    info_requested,
    make_ctx,
    new_cid,
    open_pool,
    oversight,
    pool_of,
    reopened,
    resolved,
    routed,
    submitted,
    transferred,
    withdrawn,
)
from tests.support.stack import PostgresCluster
from tests.support.wait import eventually

H = timedelta(hours=1)


def scenario() -> list[list[Envelope]]:
    """Phases of events; within a phase the order across topics does not matter (each
    case's events of one topic stay in order on its partition)."""
    a, b, c, d, e, f = (new_cid() for _ in range(6))
    return [
        # 1: intake's submissions.
        [submitted(x, MONDAY_9) for x in (a, b, c, d, e, f)],
        # 2: the router's decisions and the agencies' work: one backlog.
        [routed(a, MONDAY_9, ACK_DUE, RESOLVE_DUE),
         acknowledged(a, MONDAY_9 + H, RESOLVE_DUE),
         info_requested(a, MONDAY_9 + 2 * H),
         clock_resumed(a, MONDAY_9 + 30 * H, None, RESOLVE_DUE + timedelta(days=1)),
         routed(b, MONDAY_9, ACK_DUE, RESOLVE_DUE),
         transferred(b, MONDAY_9 + 3 * H, ACK_DUE + timedelta(days=2),
                     RESOLVE_DUE + timedelta(days=7)),
         routed(c, MONDAY_9, ACK_DUE, RESOLVE_DUE),
         acknowledged(c, MONDAY_9 + H, RESOLVE_DUE),
         resolved(c, MONDAY_9 + 5 * H),
         routed(d, MONDAY_9, ACK_DUE, RESOLVE_DUE),
         acknowledged(d, MONDAY_9 + H, RESOLVE_DUE, agency=OTHER_AGENCY),
         resolved(d, MONDAY_9 + 6 * H, agency=OTHER_AGENCY),
         routed(e, MONDAY_9, ACK_DUE, RESOLVE_DUE),
         env(ComplaintNeedsTriage(
             tracking_code=f"AWS-{f[-6:].upper()}", region="MDN", category="adminduk-ktp",
             deadlines=Deadlines(triage_by=MONDAY_9 + timedelta(days=3))), f, MONDAY_9)],
        # 3: the citizens answer: a dispute, a low rating, a withdrawal.
        [feedback(c, MONDAY_9 + 8 * H, 1, dispute=True),
         feedback(d, MONDAY_9 + 8 * H, 2),
         withdrawn(e, MONDAY_9 + 8 * H)],
        # 4: the disputed case goes back to its agency.
        [reopened(c, MONDAY_9 + 9 * H, RESOLVE_DUE + timedelta(days=10))],
    ]


TOPIC = {"intake": topics.INTAKE, "router": topics.ROUTER}


async def publish_all(bootstrap: str, envelopes: list[Envelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send(TOPIC[env.producer], env.to_bytes(),
                                key=env.complaint_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def applied(pool: asyncpg.Pool, envelopes: list[Envelope]) -> bool:
    n = await pool.fetchval("SELECT count(*) FROM oversight.processed_events"
                            " WHERE event_id = ANY($1::uuid[])", [e.event_id for e in envelopes])
    return int(n) == len(envelopes)


async def state(pool: asyncpg.Pool) -> dict[str, Any]:
    """Everything the events decide, in an order that does not depend on arrival."""
    cases = await pool.fetch("SELECT * FROM oversight.cases ORDER BY complaint_id")
    deadlines = await pool.fetch(
        "SELECT complaint_id, kind, step, agency, due_at, fire_at, status"
        " FROM oversight.deadlines ORDER BY complaint_id, kind, step, status, due_at, fire_at,"
        " agency")
    review = await pool.fetch("SELECT complaint_id, reason, detail FROM oversight.review_items"
                              " ORDER BY complaint_id, reason, detail::text")
    timeline = await pool.fetch("SELECT complaint_id, event_id, event_type, payload"
                                " FROM oversight.timeline ORDER BY complaint_id, event_id")
    # (updated_at is the database's wall clock, not the service's clock.)
    return {"cases": [{k: v for k, v in r.items() if k != "updated_at"} for r in cases],
            "deadlines": [dict(r) for r in deadlines],
            "review": [dict(r) for r in review], "timeline": [dict(r) for r in timeline]}


@pytest.fixture
async def second_database(pg: PostgresCluster) -> AsyncIterator[str]:
    name = await pg.create_database()
    try:
        yield pg.dsn(name)
    finally:
        await pg.drop_database(name)


async def test_feed_and_the_real_consumer_end_in_the_same_state(
        settings: Settings, second_database: str) -> None:
    phases = scenario()
    ctx, _ = make_ctx(ManualClock(MONDAY_9))
    fed = await open_pool(second_database)
    try:
        for phase in phases:
            await feed(fed, ctx, *phase)
        expected = await state(fed)
    finally:
        await fed.close()

    bootstrap = settings.kafka_bootstrap or ""
    clock = ManualClock(MONDAY_9)  # nothing falls due: only the events decide
    async with oversight(settings, clock) as client:
        await publish_all(bootstrap, phases[0])
        await eventually(lambda: applied(pool_of(client), phases[0]), within=60,
                         what="the submissions applied")
    # The service is down while the router's backlog builds up; on restart the
    # consumer reads it in one batch (the chunked fast path).
    await publish_all(bootstrap, phases[1])
    async with oversight(settings, clock) as client:
        pool = pool_of(client)
        await eventually(lambda: applied(pool, phases[1]), within=60,
                         what="the router's backlog applied")
        for phase in phases[2:]:
            await publish_all(bootstrap, phase)
            await eventually(lambda p=phase: applied(pool, p), within=60,
                             what="a phase applied")
        got = await state(pool)

    for part in ("cases", "deadlines", "review", "timeline"):
        for g, x in zip(got[part], expected[part], strict=True):
            diff = {k: (g[k], x[k]) for k in g if g[k] != x[k]}
            assert not diff, f"{part}: {diff}"
    # The scenario did exercise what it claims.
    assert {c["status"] for c in got["cases"]} >= {"withdrawn", "reopened", "triage"}
    assert {r["reason"] for r in got["review"]} >= {"dispute", "low_rating"}
    assert {d["status"] for d in got["deadlines"]} >= {"pending", "cancelled"}
