"""The outbox relay's publish stage alone: rows written at a steady rate, in group
commits as intake writes them, and the time from a row's transaction to the broker's
acknowledgement (``sent_at - created_at``, the stage `bench/e2e.py` prints as
"-> published (relay, broker ack)").

One embedded PostgreSQL and broker; the writers and the relay share this process's
event loop (as intake's requests and relay do). The load average is printed with the
figures: on a shared machine they mean little without it.

Run: ``.venv/bin/python bench/relay.py [--rate 500] [--duration 20] [--group 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from awasi.db import create_pool  # noqa: E402
from awasi.embedded import EmbeddedStack  # noqa: E402
from awasi.events.envelope import Envelope  # noqa: E402
from awasi.events.kafka import make_producer  # noqa: E402
from awasi.events.outbox import add_to_outbox  # noqa: E402
from awasi.events.payloads import ProbePing  # noqa: E402
from awasi.events.relay import OutboxRelay  # noqa: E402
from awasi.settings import Settings  # noqa: E402
from bench.stats import pct  # noqa: E402
from tests.support import probe  # noqa: E402
from tests.support.stack import TEST_SETTINGS  # noqa: E402


async def run(settings: Settings, rate: float, seconds: float, group: int) -> list[float]:
    dsn = settings.require_database()
    await probe.migrate(dsn)
    await probe.ensure_probe_topic(settings)
    pool = await create_pool(dsn, min_size=4, max_size=10)
    producer = make_producer(settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, probe.SCHEMA, batch_size=500, poll_interval_s=0.5,
                        retention=timedelta(days=1), listen_dsn=dsn)
    task = asyncio.ensure_future(relay.run())
    await asyncio.sleep(1)

    async def write(first: int) -> None:
        envs = [Envelope.build(ProbePing(seq=s, sent_at=datetime.now(UTC)),
                               complaint_id=f"probe-{s % 64}", producer="probe")
                for s in range(first, first + group)]
        async with pool.acquire() as conn, conn.transaction():
            await add_to_outbox(conn, probe.SCHEMA, probe.TOPIC, *envs)

    total = int(rate * seconds) // group
    writes = []
    start = time.perf_counter()
    for i in range(total):
        writes.append(asyncio.ensure_future(write(i * group)))
        # Paced against the clock, so a slow round does not lower the rate.
        await asyncio.sleep(max(0.0, start + (i + 1) * group / rate - time.perf_counter()))
    await asyncio.gather(*writes)
    while await pool.fetchval(  # noqa: ASYNC110
            "SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL"):
        await asyncio.sleep(0.05)
    rows = await pool.fetch(
        "SELECT extract(epoch FROM sent_at - created_at) AS lat FROM probe.outbox")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await producer.stop()
    await pool.close()
    return [float(r["lat"]) for r in rows]


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="awr-", dir="/tmp"))
    stack = EmbeddedStack(root)
    stack.start()
    before = os.getloadavg()
    try:
        settings = Settings.from_env({}, database_url=stack.postgres.uri("postgres"),
                                     kafka_bootstrap=stack.broker.bootstrap, **TEST_SETTINGS)
        lat = await run(settings, args.rate, args.duration, args.group)
    finally:
        stack.stop()
    after = os.getloadavg()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average before"
          f" {', '.join(f'{x:.2f}' for x in before)}, after"
          f" {', '.join(f'{x:.2f}' for x in after)} ({os.cpu_count()} cores)")
    print(f"{args.rate:.0f} rows/s for {args.duration:.0f} s in transactions of {args.group}:"
          f" {len(lat)} rows; transaction start -> broker ack p50 {pct(lat, 50) * 1000:.1f} ms"
          f"  p90 {pct(lat, 90) * 1000:.1f} ms  p99 {pct(lat, 99) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="rows per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of writing")
    parser.add_argument("--group", type=int, default=8,
                        help="rows per transaction (intake's group commit)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
