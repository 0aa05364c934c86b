"""Measure the router's "possible duplicates" lookup with many tickets.

    .venv/bin/python bench/duplicates.py [--tickets 1000000] [--samples 300]

Starts its own embedded PostgreSQL (awasi.embedded), applies the router's
migrations, loads ``--tickets`` tickets with COPY (the Indonesian text, cities, pins
and two years of dates of bench/participation.py; two thirds open; each category with
one agency of the city, a tenth transferred to another), vacuums and analyses, then
times ``duplicates.possible``'s statement (``duplicates.candidates_sql``) for random
tickets, as agency staff (their agency's open tickets) and as the triage officer (the
region's), with and without a pin. Prints p50/p99/max and the load average.
Target: p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from awasi import similarity  # noqa: E402
from awasi.catalog import load_catalog  # noqa: E402
from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.settings import DEMO_CATALOG  # noqa: E402
from bench.participation import CATEGORIES, STREETS, code, text  # noqa: E402
from bench.stats import pct  # noqa: E402
from bench.support import scratch_postgres  # noqa: E402
from services.router import duplicates  # noqa: E402
from services.router.app import migrations  # noqa: E402

COLUMNS = ("id", "complaint_id", "tracking_code", "region", "category", "title",
           "description", "location", "privacy", "reporter_ref", "channel", "submitted_at",
           "status", "agency", "rule")
OPEN = ["assigned"] * 4 + ["acknowledged"] * 3 + ["waiting_info", "reopened"]
ENDED = ["resolved", "closed", "rejected", "withdrawn"]


def rows(n: int, regions, agencies, seed: int = 7):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for i in range(n):
        region, box = regions[i % len(regions)]
        category = rng.choice(CATEGORIES)
        at = now - timedelta(seconds=rng.randint(0, 2 * 365 * 86_400))
        located = rng.random() < 0.7
        location = ({"lat": rng.uniform(box.south, box.north),
                     "lon": rng.uniform(box.west, box.east), "address": rng.choice(STREETS)}
                    if located else None)
        status = rng.choice(OPEN) if rng.random() < 0.67 else rng.choice(ENDED)
        # As routing does: a category goes to one agency of the city (a rule), a tenth
        # of the tickets were transferred to another.
        own = agencies[region][CATEGORIES.index(category) % len(agencies[region])]
        agency = own if rng.random() < 0.9 else rng.choice(agencies[region])
        yield (uuid.UUID(int=rng.getrandbits(128)), str(uuid.UUID(int=rng.getrandbits(128))),
               code(region, i), region, category, None, text(rng, category),
               json.dumps(location) if location else None, "anonymous", f"rr_{i}", "web", at,
               status, agency, "bench")


async def load(uri: str, n: int, regions, agencies) -> float:  # type: ignore[no-untyped-def]
    # A plain connection: asyncpg's own jsonb codec (JSON text) has the binary form
    # COPY needs; the pool's (objects) does not.
    start = time.perf_counter()
    conn = await asyncpg.connect(uri)
    try:
        await conn.copy_records_to_table("tickets", schema_name="router", columns=COLUMNS,
                                         records=rows(n, regions, agencies))
        await conn.execute("VACUUM (FREEZE, ANALYZE) router.tickets")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def measure(pool, samples: int, trigram: bool) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    # A random open ticket per sample (read once: not part of the timing).
    picks = await pool.fetch(
        "SELECT * FROM router.tickets TABLESAMPLE SYSTEM (1) WHERE status = 'assigned'"
        " LIMIT $1", samples * 4)
    out: dict[str, list[float]] = {}
    for t in rng.sample(list(picks), min(samples * 4, len(picks)))[:samples * 4]:
        for kind, agency in (("agency staff", t["agency"]), ("triage officer", None)):
            terms = similarity.search_terms(t["description"])
            loc = t["location"]
            point = (loc["lat"], loc["lon"]) if loc else None
            args = [t["region"], t["category"], similarity.query_text(terms, trigram),
                    t["id"], agency, duplicates.LIMIT, duplicates.CANDIDATES]
            if point:
                args += list(point)
            sql = duplicates.candidates_sql(trigram, point is not None, agency is not None)
            start = time.perf_counter()
            await pool.fetch(sql, *args)
            label = f"{kind}, {'with a pin' if point else 'no pin'}"
            values = out.setdefault(label, [])
            if len(values) < samples:
                values.append((time.perf_counter() - start) * 1000)
    return out


async def main(n: int, samples: int) -> None:
    catalog = load_catalog(DEMO_CATALOG)
    regions = [(r.code, r.bbox) for r in catalog.regions.values() if r.bbox is not None]
    agencies = {code: [a.code for a in catalog.agencies_in(code)] for code, _ in regions}
    async with scratch_postgres("awd-") as pg:
        pool = await create_pool(pg.uri(), min_size=1, max_size=4)
        async with pool.acquire() as conn:
            await migrate_schema(conn, "router", migrations())
        trigram = await similarity.has_trigram(pool)
        loaded = await load(pg.uri(), n, regions, agencies)
        print(f"{n:,} tickets loaded (COPY, vacuum, analyse) in {loaded:.0f} s;"
              f" similarity: {'pg_trgm' if trigram else 'full-text ranking'};"
              f" load average {os.getloadavg()}")
        await measure(pool, 20, trigram)  # warm the cache
        results = await measure(pool, samples, trigram)
        print(f"{'possible duplicates, as':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for kind, values in results.items():
            print(f"{kind:<34} {pct(values, 50):8.1f} {pct(values, 99):8.1f}"
                  f" {max(values):8.1f}  (n={len(values)})")
        print(f"load average after: {os.getloadavg()}")
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.tickets, args.samples))
