"""Outbox relays on the probe schema (tests/support/probe.py), each with its own pool
and producer, running until the block ends: two or more are a service's replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from awasi.db import create_pool
from awasi.events.kafka import make_producer
from awasi.events.relay import OutboxRelay, RelayMetrics
from awasi.settings import Settings
from tests.support import probe


@contextlib.asynccontextmanager
async def running_relays(settings: Settings, n: int, **kw: Any) -> AsyncIterator[list[OutboxRelay]]:
    """``n`` relays on the probe schema, each with its own pool and producer, running."""
    dsn = settings.require_database()
    pools = [await create_pool(dsn, min_size=1, max_size=3) for _ in range(n)]
    producers = [make_producer(settings) for _ in range(n)]
    for p in producers:
        await p.start()
    rs = [OutboxRelay(pools[i], producers[i], probe.SCHEMA, retention=timedelta(days=1),
                      metrics=RelayMetrics(CollectorRegistry()), listen_dsn=dsn, **kw)
          for i in range(n)]
    tasks = [asyncio.ensure_future(r.run()) for r in rs]
    try:
        yield rs
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
