"""Two relays on one schema (two service replicas) never interleave batches: while
events are written, both run with small batches, and on the topic each complaint's
events are in the order they were written, each once."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from prometheus_client import CollectorRegistry

from awasi.db import create_pool
from awasi.events.kafka import make_producer
from awasi.events.relay import OutboxRelay, RelayMetrics
from awasi.settings import Settings
from tests.support import probe
from tests.support.kafka import read_all
from tests.support.wait import eventually

EVENTS = 400
KEYS = 4


async def test_two_relays_keep_each_complaints_order_and_publish_once(
        settings: Settings) -> None:
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await probe.ensure_probe_topic(settings)
    pools = [await create_pool(dsn, min_size=1, max_size=4) for _ in range(3)]
    producers = [make_producer(settings) for _ in range(2)]
    for p in producers:
        await p.start()
    metrics = [RelayMetrics(CollectorRegistry()) for _ in range(2)]
    relays = [OutboxRelay(pools[i], producers[i], probe.SCHEMA, batch_size=7,
                          poll_interval_s=0.01, retention=timedelta(days=1),
                          metrics=metrics[i], listen_dsn=dsn) for i in range(2)]
    tasks = [asyncio.ensure_future(r.run()) for r in relays]
    try:
        # Several writers at once, each complaint's events written in seq order.
        seqs = list(range(EVENTS))
        await asyncio.gather(*(probe.write_events(pools[2], seqs[k::KEYS], keys=KEYS)
                               for k in range(KEYS)))

        async def drained() -> bool:
            return not await pools[2].fetchval(
                "SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL")

        await eventually(drained, within=60, what="the outbox drained")
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for p in producers:
            await p.stop()
        for p in pools:
            await p.close()

    messages = await read_all(settings.require_kafka(), probe.TOPIC, settle=0.5)
    published = [m["payload"]["seq"] for m in messages]
    assert sorted(published) == seqs, "an event published twice, or not at all"
    by_key: dict[str, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m["_partition"], m["_offset"])):
        by_key.setdefault(m["_key"], []).append(m["payload"]["seq"])
    assert len(by_key) == KEYS
    for key, order in by_key.items():
        assert order == sorted(order), f"{key}: events out of the order written"
    # Together the two published each event once (which of them published a batch is
    # the lock's business). Without the lock both read the same rows: this test fails.
    counts = [m.published._value.get() for m in metrics]  # noqa: SLF001
    assert sum(counts) == EVENTS, counts
