"""Measure the oversight scheduler: how late breaches are noticed, and what one sweep
costs, with 10,000 and with 1,000,000 open cases in the database.

    .venv/bin/python bench/scheduler.py [--sizes 10000 1000000] [--due 400]

Starts its own embedded PostgreSQL (awasi.embedded), bulk-loads open cases with
generate_series (each with a pending warning and a pending breach far in the future),
then, for each size:
- lateness: ``--due`` deadlines fall due spread over the next 4 seconds of real time
  while the scheduler loop runs at the default interval (0.5 s); lateness is the fired
  time minus the due time (p50, p99, max);
- sweep cost: the wall time of one sweep firing 200 due breaches (each writes its
  events to the outbox, a review item and a level-2 row), and of an idle sweep
  (nothing due), medians of several runs.
Prints the cost ratio between the largest and the smallest size. Targets: p99
lateness <= 1 s, ratio <= 1.5 (the partial index on pending rows' fire_at makes a
sweep's cost independent of the table's size).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from awasi.catalog import load_catalog  # noqa: E402
from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.settings import Settings  # noqa: E402
from bench.support import pct, scratch_postgres  # noqa: E402
from services.oversight.app import migrations  # noqa: E402
from services.oversight.clock import SystemClock  # noqa: E402
from services.oversight.scheduler import Scheduler  # noqa: E402

INTERVAL_S = Settings().scheduler_interval_s


async def load(pool, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE oversight.deadlines, oversight.review_items,"
                           " oversight.outbox, oversight.cases CASCADE")
        await conn.execute(
            "INSERT INTO oversight.cases (complaint_id, tracking_code, region, category,"
            " agency, status, routed_at, resolve_by)"
            " SELECT 'c' || g, 'AWS-' || g, 'MDN', 'adminduk-ktp', 'MDN-DISDUKCAPIL', 'assigned',"
            " now(), now() + interval '30 days' + g * interval '1 second'"
            " FROM generate_series(1, $1) g", n)
        await conn.execute(
            "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at, fire_at)"
            " SELECT complaint_id, 'resolve', s.step, agency, resolve_by,"
            "  CASE s.step WHEN 'breach' THEN resolve_by ELSE resolve_by - interval '2 days' END"
            " FROM oversight.cases, (VALUES ('warning'), ('breach')) AS s(step)")
        # As in a database that has been running: vacuumed (hint bits and visibility
        # map set) and analysed, so the first sweep does not pay for the bulk load.
        await conn.execute("VACUUM (FREEZE, ANALYZE) oversight.cases")
        await conn.execute("VACUUM (FREEZE, ANALYZE) oversight.deadlines")
    return time.perf_counter() - start


async def add_due(pool, count: int, offsets_s: list[float], tag: str) -> None:  # type: ignore[no-untyped-def]
    await pool.executemany(
        "INSERT INTO oversight.deadlines (complaint_id, kind, step, agency, due_at, fire_at)"
        " VALUES ('c' || $1::int, 'acknowledge', 'breach', $2, now() + make_interval(secs => $3),"
        " now() + make_interval(secs => $3))",
        [(i + 1, "MDN-DISDUKCAPIL", offsets_s[i])
         for i in range(count)],
    )


async def measure(pool, catalog, n: int, due: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    load_s = await load(pool, n)
    scheduler = Scheduler(pool, catalog, SystemClock())
    # Lateness: deadlines falling due over the next 4 s while the loop runs.
    spread = 4.0
    await add_due(pool, due, [0.2 + spread * i / due for i in range(due)], "late")
    loop = asyncio.create_task(scheduler.run(INTERVAL_S))
    await asyncio.sleep(spread + 1.5)
    loop.cancel()
    try:
        await loop
    except asyncio.CancelledError:
        pass
    rows = await pool.fetch(
        "SELECT extract(epoch FROM fired_at - fire_at) AS late FROM oversight.deadlines"
        " WHERE kind = 'acknowledge' AND step = 'breach'")
    late = [float(r["late"]) for r in rows if r["late"] is not None]
    missed = len(rows) - len(late)
    # Sweep cost, 200 due breaches at once.
    busy = []
    await add_due(pool, 200, [-1.0] * 200, "warm")
    await scheduler.sweep()  # warm-up, not measured
    for _ in range(9):
        await add_due(pool, 200, [-1.0] * 200, "busy")
        t = time.perf_counter()
        result = await scheduler.sweep()
        busy.append(time.perf_counter() - t)
        assert result.fired == 200, result
    idle = []
    for _ in range(30):
        t = time.perf_counter()
        await scheduler.sweep()
        idle.append(time.perf_counter() - t)
    return {"n": n, "load_s": load_s, "late_p50": pct(late, 50), "late_p99": pct(late, 99),
            "late_max": max(late), "missed": missed, "fired": len(late),
            "sweep200_s": statistics.median(busy), "idle_s": statistics.median(idle)}


async def main(sizes: list[int], due: int) -> int:
    async with scratch_postgres("awb-") as pg:
        pool = await create_pool(pg.uri(), min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                await migrate_schema(conn, "oversight", migrations())
            catalog = load_catalog(Settings().catalog)
            results = []
            for n in sizes:
                r = await measure(pool, catalog, n, due)
                results.append(r)
                print(f"{n:>9,} open cases: load {r['load_s']:.1f} s; lateness over"
                      f" {r['fired']} breaches p50 {r['late_p50'] * 1000:.0f} ms,"
                      f" p99 {r['late_p99'] * 1000:.0f} ms, max {r['late_max'] * 1000:.0f} ms"
                      f" (missed {r['missed']}); sweep firing 200:"
                      f" {r['sweep200_s'] * 1000:.1f} ms; idle sweep {r['idle_s'] * 1000:.2f} ms",
                      flush=True)
            small, large = results[0], results[-1]
            ratio = large["sweep200_s"] / small["sweep200_s"]
            idle_ratio = large["idle_s"] / small["idle_s"]
            worst_p99 = max(r["late_p99"] for r in results)
            print(f"sweep cost ratio {large['n']:,} / {small['n']:,}: {ratio:.2f}"
                  f" (idle sweep {idle_ratio:.2f}); target <= 1.5")
            print(f"worst p99 lateness {worst_p99 * 1000:.0f} ms; target <= 1000 ms"
                  f" (scheduler interval {INTERVAL_S} s)")
            ok = ratio <= 1.5 and worst_p99 <= 1.0 and all(r["missed"] == 0 for r in results)
            print("targets met" if ok else "TARGETS NOT MET")
            return 0 if ok else 1
        finally:
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--due", type=int, default=400)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.sizes, args.due)))
