"""The idempotent consumer when things keep failing, with a real broker and database
(the consumer runs in-process so the test can choose its handler's failures):

- transient errors that outlast the retries hold the partition: it seeks back, and
  nothing is skipped, reordered or dead-lettered;
- a chunk whose database commit fails for good is run again record by record, so
  only the culprit is dead-lettered;
- a dead-letter publish that fails holds the partition until it succeeds;
- a partition taken away (a rebalance) while its chunk was being retried: the
  consumer lets it go instead of dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from awasi.db import TransientDatabaseError, create_pool
from awasi.embedded import EmbeddedBroker
from awasi.events import topics
from awasi.events.consumer import IdempotentConsumer, PoisonEvent
from awasi.events.envelope import Envelope
from awasi.events.kafka import make_consumer, make_producer
from awasi.events.payloads import ProbePing
from awasi.settings import Settings
from tests.support import probe
from tests.support.kafka import committed_offsets, publish, read_all
from tests.support.wait import eventually

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
KEY = "one-complaint"  # every event on one partition: order matters


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    await probe.migrate(settings.require_database())
    p = await create_pool(settings.require_database(), min_size=1, max_size=5)
    await p.execute("CREATE TABLE probe.applied (n bigserial PRIMARY KEY, seq int NOT NULL)")
    try:
        yield p
    finally:
        await p.close()


def ordered(fail: Callable[[int], BaseException | None]) -> Handler:
    """A handler recording each application in commit order (``probe.applied``);
    ``fail(seq)`` may return an exception to raise instead."""

    async def apply(conn: asyncpg.Connection, envelope: Envelope) -> None:
        payload = envelope.typed_payload()
        assert isinstance(payload, ProbePing)
        error = fail(payload.seq)
        if error is not None:
            raise error
        await conn.execute("INSERT INTO probe.applied (seq) VALUES ($1)", payload.seq)

    return apply


async def publish_pings(settings: Settings, seqs: range) -> list[Envelope]:
    await probe.ensure_probe_topic(settings)
    envelopes = [Envelope.build(ProbePing(seq=s), complaint_id=KEY, producer="probe")
                 for s in seqs]
    for env in envelopes:
        await publish(settings.require_kafka(), probe.TOPIC, env.to_bytes(), key=KEY.encode())
    return envelopes


@contextlib.asynccontextmanager
async def consuming(settings: Settings, pool: asyncpg.Pool, handler: Handler,
                    dead_letter_bootstrap: str | None = None,
                    ) -> AsyncIterator[IdempotentConsumer]:
    """Run an IdempotentConsumer on the probe topic until the block ends."""
    producer = make_producer(settings.with_(kafka_bootstrap=dead_letter_bootstrap)
                             if dead_letter_bootstrap else settings)
    await producer.start()
    kafka = make_consumer(settings, f"g-{uuid.uuid4().hex[:8]}", probe.TOPIC)
    await kafka.start()
    consumer = IdempotentConsumer(name="probe", schema=probe.SCHEMA, pool=pool,
                                  consumer=kafka, producer=producer, handler=handler,
                                  max_retries=2, retry_backoff_s=0.01, chunk_size=100)
    task = asyncio.ensure_future(consumer.run())
    try:
        yield consumer
        assert not task.done(), f"the consumer died: {task.exception()!r}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await kafka.stop()
        await producer.stop()


async def applied_order(pool: asyncpg.Pool) -> list[int]:
    return [r["seq"] for r in await pool.fetch("SELECT seq FROM probe.applied ORDER BY n")]


async def test_transient_errors_past_the_retries_hold_the_partition(
        settings: Settings, pool: asyncpg.Pool) -> None:
    attempts = {"n": 0}
    outlast = 3 * (2 + 1)  # three full rounds of retries (max_retries=2) run out

    def fail(seq: int) -> BaseException | None:
        if seq == 5:
            attempts["n"] += 1
            if attempts["n"] <= outlast:
                return TransientDatabaseError("the database is restarting")
        return None

    await publish_pings(settings, range(1, 11))
    async with consuming(settings, pool, ordered(fail)):
        await eventually(lambda: _count(pool, 10), within=60, what="every event applied")
    assert attempts["n"] == outlast + 1
    # Nothing skipped, nothing twice, and the order of the partition kept: event 6
    # never overtook the event that kept failing.
    assert await applied_order(pool) == list(range(1, 11))
    assert await read_all(settings.require_kafka(), topics.DEAD_LETTER, settle=0.5) == []


async def test_a_commit_that_fails_for_good_is_isolated_to_its_record(
        settings: Settings, pool: asyncpg.Pool) -> None:
    # A deferred foreign key: the statement succeeds, the COMMIT fails; the handler
    # cannot see it coming. Only event 7 refers to a missing parent.
    await pool.execute("CREATE TABLE probe.parent (id int PRIMARY KEY);"
                       "CREATE TABLE probe.child (seq int REFERENCES probe.parent (id)"
                       " DEFERRABLE INITIALLY DEFERRED)")
    await pool.execute("INSERT INTO probe.parent SELECT g FROM generate_series(1, 10) g"
                       " WHERE g <> 7")

    async def apply(conn: asyncpg.Connection, envelope: Envelope) -> None:
        payload = envelope.typed_payload()
        assert isinstance(payload, ProbePing)
        await conn.execute("INSERT INTO probe.child (seq) VALUES ($1)", payload.seq)
        await conn.execute("INSERT INTO probe.applied (seq) VALUES ($1)", payload.seq)

    envelopes = await publish_pings(settings, range(1, 11))
    async with consuming(settings, pool, apply):
        dead = await _dead_letters(settings.require_kafka(), 1)
        await eventually(lambda: _count(pool, 9), within=60, what="the nine good events")
    assert await applied_order(pool) == [s for s in range(1, 11) if s != 7]
    assert len(dead) == 1 and str(envelopes[6].event_id) in dead[0]["value"]
    assert "ForeignKeyViolation" in dead[0]["reason"]
    assert await pool.fetchval("SELECT count(*) FROM probe.processed_events"
                               " WHERE event_id = $1", envelopes[6].event_id) == 0


async def test_a_failed_dead_letter_publish_holds_the_partition_until_it_succeeds(
        settings: Settings, pool: asyncpg.Pool) -> None:
    # The dead-letter topic lives on a second broker that stops answering.
    dlq = EmbeddedBroker()
    dlq.start()
    try:
        def fail(seq: int) -> BaseException | None:
            return PoisonEvent("seq 3 is poison") if seq == 3 else None

        await publish_pings(settings, range(1, 7))
        async with consuming(settings, pool, ordered(fail),
                             dead_letter_bootstrap=dlq.bootstrap) as consumer:
            dlq.pause()
            try:
                # The good events around the poison are applied (each its savepoint)...
                await eventually(lambda: _count(pool, 5), within=60, what="the good events")
                # ... but the partition's offset stays before the poison while its dead
                # letter cannot be sent, so nothing after it counts as done.
                await asyncio.sleep(2 * settings.kafka_request_timeout_ms / 1000)
                group = consumer.consumer._group_id  # noqa: SLF001
                held = await committed_offsets(settings.require_kafka(), group, probe.TOPIC,
                                               settings.topic_partitions)
                assert max(held.values()) <= 2, held
            finally:
                dlq.resume()
            dead = await _dead_letters(dlq.bootstrap, 1)

            async def done() -> bool:
                offsets = await committed_offsets(settings.require_kafka(), group,
                                                  probe.TOPIC, settings.topic_partitions)
                return max(offsets.values()) == 6

            await eventually(done, within=60, what="the partition moving past the poison")
        assert "seq 3 is poison" in dead[0]["reason"]
        assert await applied_order(pool) == [1, 2, 4, 5, 6]
    finally:
        dlq.stop()


async def test_a_partition_taken_away_during_the_retries_is_let_go(
        settings: Settings, pool: asyncpg.Pool, broker: EmbeddedBroker) -> None:
    """A rebalance took the partition while its chunk kept failing: seeking it back
    would raise (no longer assigned) and kill the consumer's task. It is let go: its
    new owner reads it again from the last committed offset."""
    await publish_pings(settings, range(1, 4))
    reader = AIOKafkaConsumer(probe.TOPIC, bootstrap_servers=broker.bootstrap,
                              group_id=None, auto_offset_reset="earliest")
    await reader.start()
    try:
        batch = await eventually(lambda: reader.getmany(timeout_ms=500), within=30,
                                 what="the events")
    finally:
        await reader.stop()
    (tp, records), = batch.items()
    producer = make_producer(settings)
    await producer.start()
    # A member of a group that now owns other partitions, not this one.
    owner = make_consumer(settings, f"g-{uuid.uuid4().hex[:8]}", "awasi.other.v1")
    await owner.start()
    try:
        await eventually(lambda: _assigned(owner), within=30, what="an assignment")
        consumer = IdempotentConsumer(
            name="probe", schema=probe.SCHEMA, pool=pool, consumer=owner, producer=producer,
            handler=ordered(lambda _: TransientDatabaseError("down")), max_retries=1,
            retry_backoff_s=0.01)
        assert tp not in owner.assignment()
        assert await consumer._partition(tp, records) == (tp, None)  # noqa: SLF001
    finally:
        await owner.stop()
        await producer.stop()
    assert await applied_order(pool) == []


async def _assigned(consumer: AIOKafkaConsumer) -> bool:
    await asyncio.sleep(0.1)
    return bool(consumer.assignment())


async def _count(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM probe.applied")) >= n


async def _dead_letters(bootstrap: str, n: int) -> list[dict[str, object]]:
    from tests.support.kafka import read_topic

    return await read_topic(bootstrap, topics.DEAD_LETTER, until=lambda ms: len(ms) >= n,
                            timeout=60)

