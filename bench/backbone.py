"""Backbone benchmark: raw aiokafka produce-to-consume against the same events through
outbox -> relay -> idempotent consumer, on one embedded broker and database.

Run: `.venv/bin/python bench/backbone.py [--events 20000]`. Prints events/s and
latency percentiles for both paths and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402

from awasi.db import create_pool  # noqa: E402
from awasi.embedded import EmbeddedStack  # noqa: E402
from awasi.events.consumer import IdempotentConsumer  # noqa: E402
from awasi.events.kafka import make_consumer, make_producer  # noqa: E402
from awasi.events.relay import OutboxRelay  # noqa: E402
from awasi.events.topics import ensure_topics  # noqa: E402
from awasi.settings import Settings  # noqa: E402
from bench.stats import pct  # noqa: E402
from tests.support import probe  # noqa: E402
from tests.support.stack import TEST_SETTINGS  # noqa: E402


async def raw_kafka(bootstrap: str, n: int) -> tuple[float, list[float]]:
    topic = "bench.raw"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=1)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await producer.start()
    await producer.send_and_wait(topic, b"warmup")
    await consumer.start()
    latencies: list[float] = []
    payload = b"x" * 600  # about the size of a complaint.submitted envelope

    async def consume() -> None:
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    if r.value == b"warmup":
                        continue
                    latencies.append(now - float(r.key.decode()))
                    seen += 1

    task = asyncio.ensure_future(consume())
    start = time.perf_counter()
    futures = []
    for _ in range(n):
        futures.append(await producer.send(topic, payload, key=str(time.perf_counter()).encode()))
        if len(futures) >= 500:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    await task
    elapsed = time.perf_counter() - start
    await consumer.stop()
    await producer.stop()
    return n / elapsed, latencies


async def outbox_path(settings: Settings, n: int, writers: int) -> tuple[float, list[float]]:
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await probe.ensure_probe_topic(settings)
    pool = await create_pool(dsn, min_size=writers, max_size=writers + 6)
    producer = make_producer(settings)
    await producer.start()
    kafka_consumer = make_consumer(settings, probe.GROUP, probe.TOPIC)
    await kafka_consumer.start()
    relay = OutboxRelay(pool, producer, probe.SCHEMA, batch_size=500, poll_interval_s=0.5,
                        retention=timedelta(days=1), listen_dsn=dsn)
    consumer = IdempotentConsumer(name="probe", schema=probe.SCHEMA, pool=pool,
                                  consumer=kafka_consumer, producer=producer,
                                  handler=probe.handler_for("bench"))
    tasks = [asyncio.ensure_future(relay.run()), asyncio.ensure_future(consumer.run())]
    await asyncio.sleep(2)  # group join
    start = time.perf_counter()
    t0 = datetime.now(UTC)
    per = n // writers
    await asyncio.gather(*(probe.write_events(pool, range(w * per, (w + 1) * per), keys=64)
                           for w in range(writers)))
    total = per * writers
    while await pool.fetchval(  # noqa: ASYNC110
            "SELECT count(*) FROM probe.effects WHERE seq < 10000000") < total:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    # Everything the flood's consumer applied is counted above: nothing else (the paced
    # run's events are on their own topic).
    applied = await pool.fetchval("SELECT count(*) FROM probe.processed_events"
                                  " WHERE consumer = 'probe'")
    assert applied == total, f"the flood consumer applied {applied} events for {total}"
    rows = await pool.fetch("SELECT extract(epoch FROM applied_at - sent_at) AS lat"
                            " FROM probe.effects WHERE sent_at >= $1 AND seq < 10000000", t0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await kafka_consumer.stop()
    await producer.stop()
    await pool.close()
    return total / elapsed, [float(r["lat"]) for r in rows]


# The paced run's own topic: on the flood's topic, the flood's consumer group (new, so
# reading from the start) would apply the paced events again, uncounted.
PACED_TOPIC = "awasi.probe.paced.v1"


async def paced_latency(settings: Settings, rate: float, seconds: float) -> list[float]:
    """Latency through outbox -> relay -> consumer at a steady rate (no backlog)."""
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await ensure_topics(settings, (PACED_TOPIC,))
    pool = await create_pool(dsn, min_size=4, max_size=12)
    producer = make_producer(settings)
    await producer.start()
    kafka_consumer = make_consumer(settings, probe.GROUP + ".paced", PACED_TOPIC)
    await kafka_consumer.start()
    relay = OutboxRelay(pool, producer, probe.SCHEMA, batch_size=500, poll_interval_s=0.5,
                        retention=timedelta(days=1), listen_dsn=dsn)
    consumer = IdempotentConsumer(name="probe.paced", schema=probe.SCHEMA, pool=pool,
                                  consumer=kafka_consumer, producer=producer,
                                  handler=probe.handler_for("paced"))
    tasks = [asyncio.ensure_future(relay.run()), asyncio.ensure_future(consumer.run())]
    await asyncio.sleep(2)
    base = 10_000_000
    total = int(rate * seconds)
    t0 = datetime.now(UTC)
    writes = []
    for i in range(total):
        writes.append(asyncio.ensure_future(probe.write_events(pool, [base + i],
                                                               topic=PACED_TOPIC)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*writes)
    while await pool.fetchval("SELECT count(*) FROM probe.effects WHERE seq >= $1",  # noqa: ASYNC110
                              base) < total:
        await asyncio.sleep(0.05)
    rows = await pool.fetch("SELECT extract(epoch FROM applied_at - sent_at) AS lat"
                            " FROM probe.effects WHERE seq >= $1 AND sent_at >= $2", base, t0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await kafka_consumer.stop()
    await producer.stop()
    await pool.close()
    return [float(r["lat"]) for r in rows]


async def main_async(n: int, writers: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="awb-", dir="/tmp"))
    stack = EmbeddedStack(root)  # stops PostgreSQL again if the broker fails to start
    stack.start()
    pg, broker = stack.postgres, stack.broker
    try:
        settings = Settings.from_env({}, database_url=pg.uri("postgres"),
                                     kafka_bootstrap=broker.bootstrap,
                                     **{**TEST_SETTINGS, "db_pool_max": writers + 6})
        raw_rate, raw_lat = await raw_kafka(broker.bootstrap, n)
        # Paced first, on its own topic (so the flood's consumer never sees its events).
        paced = await paced_latency(settings, 300, 10)
        ob_rate, ob_lat = await outbox_path(settings, n, writers)
    finally:
        stack.stop()
    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB")
    print(f"events: {n} (600-byte raw messages; probe envelopes), writers: {writers}")
    for name, rate, lat in (("raw aiokafka produce->consume", raw_rate, raw_lat),
                            ("outbox->relay->idempotent consumer", ob_rate, ob_lat)):
        print(f"{name:<36} {rate:>9.0f} events/s   latency p50 {pct(lat, 50) * 1000:7.1f} ms"
              f"  p99 {pct(lat, 99) * 1000:7.1f} ms  mean {statistics.mean(lat) * 1000:7.1f} ms")
    print(f"ratio outbox/raw throughput: {ob_rate / raw_rate:.3f}")
    print("(the flood figures queue behind the writers; at a steady 300 events/s:)")
    print(f"outbox->relay->consumer, paced       latency p50 {pct(paced, 50) * 1000:7.1f} ms"
          f"  p99 {pct(paced, 99) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main_async(args.events, args.writers))


if __name__ == "__main__":
    main()
