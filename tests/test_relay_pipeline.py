"""The relay's pipeline: several batches at the broker at once keep each complaint's
order and publish each event once; a row committed late with a lower id is not
skipped; a leader whose database session is killed mid-stream loses nothing, and on
the topic each complaint's events still first appear in the order they were written."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from awasi.db import create_pool
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import ProbePing
from awasi.settings import Settings
from tests.support import probe
from tests.support.kafka import read_all
from tests.support.relays import running_relays
from tests.support.wait import eventually

KEYS = 6


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await probe.ensure_probe_topic(settings)
    p = await create_pool(dsn, min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()


async def drained(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval("SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL")


def first_seen_order(messages: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Per key, each seq in the order it first appears on its partition."""
    by_key: dict[str, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m["_partition"], m["_offset"])):
        seqs = by_key.setdefault(m["_key"], [])
        if m["payload"]["seq"] not in seqs:
            seqs.append(m["payload"]["seq"])
    return by_key


async def test_batches_in_flight_together_keep_each_complaints_order(
        settings: Settings, pool: asyncpg.Pool) -> None:
    events = 300
    # A backlog first, so the relay has more than one small batch to hand over at once.
    await asyncio.gather(*(probe.write_events(pool, list(range(events))[k::KEYS], keys=KEYS)
                           for k in range(KEYS)))
    async with running_relays(settings, 1, batch_size=5, max_in_flight=4,
                      poll_interval_s=0.05) as (relay,):
        await eventually(lambda: drained(pool), within=60, what="the outbox drained")
    assert relay.peak_in_flight > 1, "no two batches were ever at the broker together"
    assert relay.peak_in_flight <= 4
    messages = await read_all(settings.require_kafka(), probe.TOPIC, settle=0.5)
    assert sorted(m["payload"]["seq"] for m in messages) == list(range(events)), (
        "an event published twice, or not at all")
    for key, order in first_seen_order(messages).items():
        assert order == sorted(order), f"{key}: events out of the order written"


async def test_a_row_committed_late_with_a_lower_id_is_published(
        settings: Settings, pool: asyncpg.Pool) -> None:
    env = Envelope.build(ProbePing(seq=999, sent_at=datetime.now(UTC)),
                         complaint_id="probe-late", producer="probe")
    async with running_relays(settings, 1, batch_size=3, max_in_flight=4,
                      poll_interval_s=0.05) as _, pool.acquire() as slow:
        # The slow transaction takes its id first and commits last.
        tx = slow.transaction()
        await tx.start()
        try:
            await add_to_outbox(slow, probe.SCHEMA, probe.TOPIC, env)
            await probe.write_events(pool, range(30), keys=KEYS)

            async def others_sent() -> bool:
                return await pool.fetchval(
                    "SELECT count(*) FROM probe.outbox WHERE sent_at IS NOT NULL") == 30

            await eventually(others_sent, within=30, what="the later rows published")
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
        # A relay that went on past the highest id it had claimed would never see it.
        await eventually(lambda: drained(pool), within=30, what="the late row published")
    late_id, highest = await pool.fetchrow(
        "SELECT (SELECT id FROM probe.outbox WHERE key = 'probe-late'),"
        " (SELECT max(id) FROM probe.outbox)")
    assert late_id < highest
    messages = await read_all(settings.require_kafka(), probe.TOPIC, settle=0.5)
    assert sorted(m["payload"]["seq"] for m in messages) == [*range(30), 999]


async def test_leader_losing_its_session_mid_stream_loses_nothing(
        settings: Settings, pool: asyncpg.Pool) -> None:
    events = 400
    key = zlib.crc32(f"awasi.relay.{probe.SCHEMA}".encode())
    async with running_relays(settings, 2, batch_size=5, max_in_flight=4,
                      poll_interval_s=0.05) as rs:
        writers = [asyncio.ensure_future(
            probe.write_events(pool, list(range(events))[k::KEYS], keys=KEYS))
            for k in range(KEYS)]
        try:
            async def some_sent() -> bool:
                return await pool.fetchval(
                    "SELECT count(*) FROM probe.outbox WHERE sent_at IS NOT NULL") >= 50

            await eventually(some_sent, within=30, what="the first rows published")
            # Kill the leader's session (the one holding the relay's lock), with
            # batches at the broker and more rows being written.
            killed = await pool.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND objid = $1 AND granted", key)
            assert killed, "no session held the relay's lock"
            await asyncio.gather(*writers)
        finally:
            for w in writers:
                w.cancel()
        await eventually(lambda: drained(pool), within=60, what="the outbox drained")
    assert sum(r.metrics.errors._value.get() for r in rs if r.metrics) >= 1, (  # noqa: SLF001
        "the killed leader noticed nothing")
    messages = await read_all(settings.require_kafka(), probe.TOPIC, settle=0.5)
    # At least once: every event is there; repeats of the batches in flight are allowed.
    assert sorted({m["payload"]["seq"] for m in messages}) == list(range(events))
    for k, order in first_seen_order(messages).items():
        assert order == sorted(order), f"{k}: events first seen out of the order written"
