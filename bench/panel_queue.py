"""Measure the panel's review queue at scale: unfiltered and filtered by reason,
region and agency, with 1,000,000 cases and 700,000 review items of which 14,000
are open (the shape of a year at a large city: most items long closed).

    .venv/bin/python bench/panel_queue.py [--cases 1000000] [--items 700000]
                                          [--open 14000] [--samples 100]

Starts its own embedded PostgreSQL (awasi.embedded), applies oversight's
migrations, fills ``oversight.cases`` and ``oversight.review_items`` with set-based
SQL (five regions, ten agencies each; items inserted as every writer inserts them,
so the database fills in their region and agency), vacuums and analyses, then times
``panel.review_queue`` (one page of 100) per filter. Prints p50/p99 with the load
average (the machine is shared) and the indexes each plan uses. Target: p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from awasi.db import create_pool, migrate_schema  # noqa: E402
from bench.support import print_case, scratch_postgres, verdict  # noqa: E402
from services.oversight import panel  # noqa: E402
from services.oversight.app import SCHEMA, migrations  # noqa: E402

REGIONS = ["MDN", "PLJ", "SWL", "PKY", "SRG"]

FILL_CASES = """
INSERT INTO oversight.cases (complaint_id, tracking_code, region, category, agency, status,
                             submitted_at, routed_at)
SELECT 'c-' || g, 'AWS-' || lpad(to_hex(g), 8, '0'), r.code,
       'jalan-rusak', r.code || '-AG' || (g / 5) % 10,
       CASE WHEN g % 50 = 0 THEN 'acknowledged' ELSE 'closed' END,
       now() - interval '400 days' + g * interval '30 seconds',
       now() - interval '400 days' + g * interval '30 seconds'
FROM generate_series(0, $1 - 1) g
CROSS JOIN LATERAL (SELECT ($2::text[])[1 + g % 5] AS code) r
"""

# Items on every (cases / items)-th case; the newest ``open`` of them still open.
FILL_ITEMS = """
INSERT INTO oversight.review_items (complaint_id, reason, source, detail, created_at,
                                    closed_at)
SELECT 'c-' || (k::bigint * $1 / $2), (ARRAY['breach', 'dispute', 'low_rating', 'audit_sample'])
       [1 + k % 4], 'bench:' || k, '{}'::jsonb,
       now() - interval '400 days' + (k::bigint * $1 / $2) * interval '30 seconds',
       CASE WHEN k < $2 - $3 THEN now() - interval '399 days'
                                  + (k::bigint * $1 / $2) * interval '30 seconds' END
FROM generate_series(0, $2 - 1) k
"""

CASES: list[tuple[str, dict]] = [
    ("unfiltered", {}),
    ("reason breach", {"reason": "breach"}),
    ("region MDN", {"region": "MDN"}),
    ("agency MDN-AG3", {"agency": "MDN-AG3"}),
    ("region SRG + reason dispute", {"region": "SRG", "reason": "dispute"}),
    ("code prefix (10 of 12 characters)", {"code": None}),  # one of the open cases'
]


async def timed(pool, f: panel.QueueFilter, samples: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    out, n = [], 0
    async with pool.acquire() as conn:
        for _ in range(3):  # warm
            await panel.review_queue(conn, now, f)
        for _ in range(samples):
            t = time.perf_counter()
            n = len(await panel.review_queue(conn, now, f))
            out.append(time.perf_counter() - t)
    return out, n


async def plan(pool, f: panel.QueueFilter) -> str:  # type: ignore[no-untyped-def]
    # The page's statement as the function runs it, explained: its review_items indexes.
    sql, *args = panel.queue_statement(datetime.now(UTC), f)
    rows = await pool.fetch("EXPLAIN " + sql, *args)
    text_ = " ".join(r[0] for r in rows)
    names = sorted({w for w in text_.replace("(", " ").split()
                    if w.startswith("review_items")})
    seq = " + SEQ SCAN of review_items" if "Seq Scan on review_items" in text_ else ""
    return (", ".join(names) or "no index") + seq


async def main(cases: int, items: int, open_: int, samples: int) -> int:
    async with scratch_postgres("awp-") as pg:
        pool = await create_pool(pg.uri(), min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate_schema(conn, SCHEMA, migrations())
                t = time.perf_counter()
                await conn.execute(FILL_CASES, cases, REGIONS)
                filled_cases = time.perf_counter() - t
                t = time.perf_counter()
                await conn.execute(FILL_ITEMS, cases, items, open_)
                filled_items = time.perf_counter() - t
                await conn.execute("VACUUM (ANALYZE) oversight.cases, oversight.review_items")
                n_open = await conn.fetchval(
                    "SELECT count(*) FROM oversight.review_items WHERE closed_at IS NULL")
                prefix = await conn.fetchval(
                    "SELECT left(c.tracking_code, 10) FROM oversight.review_items r"
                    " JOIN oversight.cases c USING (complaint_id)"
                    " WHERE r.closed_at IS NULL ORDER BY r.id LIMIT 1")
            print(f"{cases:,} cases in {filled_cases:.0f} s, {items:,} review items"
                  f" ({n_open:,} open) in {filled_items:.0f} s;"
                  f" load average {os.getloadavg()}", flush=True)
            worst = 0.0
            for name, spec in CASES:
                f = panel.QueueFilter(limit=100, **(spec | {"code": prefix}
                                                     if "code" in spec else spec))
                times, n = await timed(pool, f, samples)
                worst = max(worst, print_case(f"{name:<30} {n:>3} cases", times,
                                              await plan(pool, f), width=40))
            return verdict(worst)
        finally:
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=700_000)
    parser.add_argument("--open", type=int, default=14_000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.cases, args.items, args.open, args.samples)))
