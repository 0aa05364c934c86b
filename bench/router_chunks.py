"""The router's cost per routed complaint, without the broker or the other services.

Feeds ``complaint.submitted`` envelopes (the mix of bench/e2e.py, demo catalog)
straight into the router's idempotent consumer (``_process_chunk``, the path a
partition's records take) against an embedded PostgreSQL, in chunks of a given size,
two ways: one by one (a plain handler: the ticket statement and the outbox statement
per event, as before set-based routing) and set-based (the router's
``ChunkedHandler``: two statements per run of submissions). The two alternate round
by round, so a slow spell of a shared machine weighs on both; the load average is
printed with each figure. Prints complaints/s and the chunk transaction's p50/p99.

Run: ``.venv/bin/python bench/router_chunks.py [--events 3000] [--chunks 5 20 100]
[--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from awasi.catalog import Catalog, load_catalog  # noqa: E402
from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.embedded import EmbeddedPostgres, ensure_runtime_dir  # noqa: E402
from awasi.events.chunked import ChunkedHandler  # noqa: E402
from awasi.events.consumer import IdempotentConsumer  # noqa: E402
from awasi.events.envelope import Envelope  # noqa: E402
from awasi.events.payloads import ComplaintSubmitted  # noqa: E402
from awasi.settings import DEMO_CATALOG  # noqa: E402
from bench.e2e import MIX  # noqa: E402
from bench.stats import pct  # noqa: E402
from services.router import app as router_app  # noqa: E402


class _Record:
    """What the consumer reads of a Kafka record."""

    def __init__(self, envelope: Envelope, offset: int) -> None:
        self.value = envelope.to_bytes()
        self.key = envelope.complaint_id.encode()
        self.topic, self.partition, self.offset = "awasi.intake.v1", 0, offset


def _records(n: int) -> list[_Record]:
    out = []
    for i in range(n):
        region, category, text = MIX[i % len(MIX)]
        cid = str(uuid.uuid4())
        env = Envelope.build(ComplaintSubmitted(
            tracking_code=f"BENCH-{uuid.uuid4().hex[:10]}", region=region, category=category,
            description=text, privacy="confidential", reporter_ref=f"rr_{cid}",
            submitted_at=datetime.now(UTC)), complaint_id=cid, producer="intake")
        out.append(_Record(env, i))
    return out


async def _round(pool: asyncpg.Pool, catalog: Catalog, set_based: bool, chunk: int,
                 n: int) -> tuple[float, list[float]]:
    chunked, accepts = router_app.event_handling(catalog)
    assert isinstance(chunked, ChunkedHandler)
    handler = chunked if set_based else chunked.handler  # the same handler, one by one
    consumer = IdempotentConsumer(name="router", schema="router", pool=pool,
                                  consumer=None, producer=None,  # type: ignore[arg-type]
                                  handler=handler, accepts=accepts)
    records = _records(n)
    times: list[float] = []
    start = time.perf_counter()
    for i in range(0, n, chunk):
        t0 = time.perf_counter()
        assert await consumer._process_chunk(records[i:i + chunk])  # noqa: SLF001
        times.append(time.perf_counter() - t0)
    return n / (time.perf_counter() - start), times


async def main(args: argparse.Namespace) -> None:
    ensure_runtime_dir()
    root = Path(tempfile.mkdtemp(prefix="awr-", dir="/tmp"))
    pg = EmbeddedPostgres(root / "pg")
    pg.start()
    try:
        admin = await asyncpg.connect(pg.uri("postgres"))
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        pool = await create_pool(pg.uri("bench"), min_size=1, max_size=2)
        async with pool.acquire() as conn:
            await migrate_schema(conn, "router", router_app.migrations())
        # One catalog, as in the service (its calendars load their holidays once).
        catalog = load_catalog(DEMO_CATALOG)
        for set_based in (False, True):  # warm-up: imports, caches, prepared statements
            await _round(pool, catalog, set_based, 20, 200)
        print(f"router consumer, {args.events} complaint.submitted per round, "
              f"{os.cpu_count()} cores")
        for chunk in args.chunks:
            for r in range(args.rounds):
                for set_based in (False, True):
                    rate, times = await _round(pool, catalog, set_based, chunk, args.events)
                    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                    print(f"chunk {chunk:>3}  round {r + 1}  "
                          f"{'set-based ' if set_based else 'one by one'}  {rate:7.0f}/s  "
                          f"chunk tx p50 {pct(times, 50) * 1000:6.1f} ms  "
                          f"p99 {pct(times, 99) * 1000:6.1f} ms  (load {load})", flush=True)
        await pool.close()
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[5, 20, 100])
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
