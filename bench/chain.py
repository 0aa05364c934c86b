"""Oversight's consumer per event at scale (issue 18): the audit chain's lock and the
deadline lookup.

    .venv/bin/python bench/chain.py [--complaints 400] [--workers 4] [--deadlines 200000]
                                    [--rounds 3]

Starts its own embedded PostgreSQL (awasi.embedded), migrates oversight, then:

1. Drain rate with many complaints at once: ``--workers`` concurrent transactions
   (as the consumer's tasks, one per Kafka partition, each a chunk of ten events of
   distinct complaints) apply submitted/routed/acknowledged/resolved for
   ``--complaints`` complaints through oversight's real ``apply_event``, with the
   consumer's ``chain.prepare`` hook. Once with the partitioned chain (now), once with
   every transaction first taking one global row lock held to its commit, which is
   what the single ``chain_head`` did before the partitions ("before"; the same code
   otherwise, so the difference is the lock alone).
2. The consumer's same-breach lookup (``domain.schedule``) at ``--deadlines`` rows,
   with the index of migration 0500 and without it (dropped for the measurement).

Prints each figure with ``os.getloadavg()``: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.embedded import EmbeddedPostgres  # noqa: E402
from services.oversight import chain  # noqa: E402
from services.oversight.app import migrations  # noqa: E402
from services.oversight.domain import apply_event  # noqa: E402
from tests.support.oversight import (  # noqa: E402
    ACK_DUE,
    MONDAY_9,
    RESOLVE_DUE,
    acknowledged,
    make_ctx,
    resolved,
    routed,
    submitted,
)

CHUNK = 10


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load {a:.1f} {b:.1f} {c:.1f}"


async def drain(pool, complaints: int, workers: int, serial: bool) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Events per second applying every complaint's four events, ``workers`` chunks
    at a time; returns (events/s, events)."""
    ctx, _ = make_ctx()
    cids = [uuid.uuid4().hex for _ in range(complaints)]
    h = timedelta(hours=1)
    # Tracking codes from the whole id: the builders' default (six hex digits) repeats
    # over thousands of complaints.
    phases = [[submitted(c, MONDAY_9, code=f"AWS-{c.upper()}") for c in cids],
              [routed(c, MONDAY_9, ACK_DUE, RESOLVE_DUE, code=f"AWS-{c.upper()}")
               for c in cids],
              [acknowledged(c, MONDAY_9 + h, RESOLVE_DUE) for c in cids],
              [resolved(c, MONDAY_9 + 2 * h) for c in cids]]
    queue: asyncio.Queue = asyncio.Queue()
    for phase in phases:
        for i in range(0, len(phase), CHUNK):
            queue.put_nowait(phase[i:i + CHUNK])

    async def worker() -> None:
        # Phases are applied in order per complaint because each phase's chunks are
        # queued after the previous phase's; a worker may still overtake, which the
        # lifecycle absorbs (stale events stay on the timeline only), as in production.
        while not queue.empty():
            chunk = queue.get_nowait()
            async with pool.acquire() as conn, conn.transaction():
                if serial:
                    # What every append did before the partitions: one row for all.
                    await conn.execute("SELECT 1 FROM oversight.jobs"
                                       " WHERE name = 'stats_snapshot' FOR UPDATE")
                await chain.prepare(conn, chunk)
                for env in chunk:
                    await apply_event(conn, ctx, env)

    n = sum(len(p) for p in phases)
    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return n / (time.perf_counter() - t), n


async def lookup(pool, rows: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        cases = rows // 4
        await conn.execute(
            "INSERT INTO oversight.cases (complaint_id) SELECT 'b' || g"
            " FROM generate_series(1, $1) g", cases)
        await conn.execute(
            "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at,"
            " fire_at, status)"
            " SELECT 'b' || g, k.kind, s.step, 'MDN-DISDUKCAPIL', now() + g * interval '1s',"
            " now() + g * interval '1s', CASE WHEN g % 3 = 0 THEN 'pending' ELSE 'fired' END"
            " FROM generate_series(1, $1) g, (VALUES ('acknowledge'), ('resolve')) k(kind),"
            " (VALUES ('warning'), ('breach')) s(step)", cases)
        await conn.execute("VACUUM (ANALYZE) oversight.deadlines")
        total = await conn.fetchval("SELECT count(*) FROM oversight.deadlines")
        query = ("SELECT 1 FROM oversight.deadlines WHERE complaint_id = $1 AND kind = $2"
                 " AND step = 'breach' AND due_at = $3 AND agency IS NOT DISTINCT FROM $4"
                 " AND status IN ('pending', 'fired') LIMIT 1")

        async def timed() -> float:
            times = []
            for i in range(200):
                cid = f"b{(i * 7919) % cases + 1}"
                t = time.perf_counter()
                await conn.fetchval(query, cid, "resolve", MONDAY_9, "MDN-DISDUKCAPIL")
                times.append(time.perf_counter() - t)
            return statistics.median(times) * 1000

        with_index = await timed()
        # Without the index: dropped inside a transaction that is rolled back after.
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("DROP INDEX oversight.deadlines_case_step")
            without = await timed()
        finally:
            await tx.rollback()
    return {"rows": total, "with_ms": with_index, "without_ms": without}


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bch-", dir="/tmp"))
    server = EmbeddedPostgres(root / "pg")
    server.start()
    try:
        dsn = server.uri("postgres")
        pool = await create_pool(dsn, min_size=args.workers, max_size=args.workers + 1)
        async with pool.acquire() as conn:
            await migrate_schema(conn, "oversight", migrations())
        print(f"drain: {args.complaints} complaints x 4 events, {args.workers} concurrent"
              f" chunks of {CHUNK}")
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):  # alternated: the machine's load drifts
            for label, serial in (("before (one global lock)", True),
                                  ("partitioned", False)):
                rate, n = await drain(pool, args.complaints, args.workers, serial)
                rates[serial].append(rate)
                print(f"  {label:26s} {rate:7.0f} events/s ({n} events)  [{load()}]")
        print(f"  median: before {statistics.median(rates[True]):.0f}, partitioned"
              f" {statistics.median(rates[False]):.0f} events/s")
        got = await lookup(pool, args.deadlines)
        print(f"same-breach lookup at {got['rows']} deadline rows: median"
              f" {got['with_ms']:.2f} ms with deadlines_case_step,"
              f" {got['without_ms']:.2f} ms without  [{load()}]")
        await pool.close()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--complaints", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--deadlines", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
