"""Two relays on one schema (two service replicas) never interleave batches: while
events are written, both run with small batches, and on the topic each complaint's
events are in the order they were written, each once."""

from __future__ import annotations

import asyncio

from awasi.db import create_pool
from awasi.settings import Settings
from tests.support import probe
from tests.support.kafka import read_all
from tests.support.relays import running_relays
from tests.support.wait import eventually

EVENTS = 400
KEYS = 4


async def test_two_relays_keep_each_complaints_order_and_publish_once(
        settings: Settings) -> None:
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await probe.ensure_probe_topic(settings)
    writer = await create_pool(dsn, min_size=1, max_size=4)
    try:
        async with running_relays(settings, 2, batch_size=7, poll_interval_s=0.01) as relays:
            # Several writers at once, each complaint's events written in seq order.
            seqs = list(range(EVENTS))
            await asyncio.gather(*(probe.write_events(writer, seqs[k::KEYS], keys=KEYS)
                                   for k in range(KEYS)))

            async def drained() -> bool:
                return not await writer.fetchval(
                    "SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL")

            await eventually(drained, within=60, what="the outbox drained")
    finally:
        await writer.close()

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
    counts = [r.metrics.published._value.get() for r in relays]  # type: ignore[union-attr]  # noqa: SLF001
    assert sum(counts) == EVENTS, counts
