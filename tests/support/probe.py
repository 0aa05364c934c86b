"""The probe: the smallest real user of the backbone, for failure tests and benchmarks.

Producer side: ``write_events`` changes state and writes the event in one transaction.
``python -m tests.support.probe relay`` runs the outbox relay as a real process;
``python -m tests.support.probe consume NAME`` runs an idempotent consumer whose
effect is a row per event in ``probe.effects`` (``times`` counts applications, so a
duplicate effect shows as 2). Both honour ``AWASI_FAULTS`` (awasi/faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from awasi.db import create_pool, load_migrations, migrate_schema
from awasi.db.pool import connect
from awasi.events.consumer import IdempotentConsumer
from awasi.events.envelope import Envelope
from awasi.events.kafka import make_consumer, make_producer
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import ProbePing
from awasi.events.relay import OutboxRelay
from awasi.events.topics import ensure_topics
from awasi.settings import Settings

SCHEMA = "probe"
TOPIC = "awasi.probe.v1"
GROUP = "awasi.probe"


def migrations() -> list[Any]:
    return load_migrations("awasi.events.migrations") + load_migrations(
        "tests.support.probe_migrations"
    )


async def migrate(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await migrate_schema(conn, SCHEMA, migrations())
    finally:
        await conn.close()


async def write_events(pool: asyncpg.Pool, seqs: range | list[int], *, keys: int = 16,
                       topic: str = TOPIC) -> None:
    """For each seq: a state row and its event (to ``topic``), in one transaction per
    seq."""
    for seq in seqs:
        complaint_id = f"probe-{seq % keys}"
        env = Envelope.build(
            ProbePing(seq=seq, sent_at=datetime.now(UTC)), complaint_id=complaint_id,
            producer="probe",
        )
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO probe.state (seq, complaint_id) VALUES ($1, $2)", seq, complaint_id
            )
            await add_to_outbox(conn, SCHEMA, topic, env)


def handler_for(name: str) -> Any:
    async def apply(conn: asyncpg.Connection, envelope: Envelope) -> None:
        payload = envelope.typed_payload()
        assert isinstance(payload, ProbePing)
        await conn.execute(
            "INSERT INTO probe.effects (seq, applied_by, sent_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (seq) DO UPDATE SET times = probe.effects.times + 1",
            payload.seq, name, payload.sent_at,
        )

    return apply


async def ensure_probe_topic(settings: Settings) -> None:
    await ensure_topics(settings, (TOPIC, "awasi.deadletter.v1"))


async def run_relay(settings: Settings) -> None:
    await ensure_probe_topic(settings)
    pool = await create_pool(settings.require_database(), min_size=1, max_size=3)
    producer = make_producer(settings)
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, SCHEMA, batch_size=settings.relay_batch_size,
                            poll_interval_s=settings.relay_poll_interval_s,
                            retention=timedelta(days=1),
                            listen_dsn=settings.require_database())
        await relay.run()
    finally:
        await producer.stop()
        await pool.close()


async def run_consumer(settings: Settings, name: str) -> None:
    await ensure_probe_topic(settings)
    pool = await create_pool(settings.require_database(), min_size=1, max_size=5)
    producer = make_producer(settings)
    await producer.start()
    kafka_consumer = make_consumer(settings, GROUP, TOPIC)
    await kafka_consumer.start()
    try:
        consumer = IdempotentConsumer(
            name="probe", schema=SCHEMA, pool=pool, consumer=kafka_consumer,
            producer=producer, handler=handler_for(name),
            max_retries=settings.consumer_max_retries,
            retry_backoff_s=settings.consumer_retry_backoff_s,
        )
        await consumer.run()
    finally:
        await kafka_consumer.stop()
        await producer.stop()
        await pool.close()


async def _main_async(role: str, name: str) -> None:
    settings = Settings.from_env()
    task = asyncio.ensure_future(
        run_relay(settings) if role == "relay" else run_consumer(settings, name)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["relay", "consume"])
    parser.add_argument("name", nargs="?", default=f"c-{uuid.uuid4().hex[:6]}")
    args = parser.parse_args()
    asyncio.run(_main_async(args.role, args.name))


if __name__ == "__main__":
    main()
