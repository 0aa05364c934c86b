"""Measure the agency desk at scale: the queue, its keyset pages, its views and the
full-text search, with 100,000 open tickets in one agency and 1,000,000 tickets in
the database.

    .venv/bin/python bench/desk.py [--total 1000000] [--agency 100000] [--samples 200]

Starts its own embedded PostgreSQL (awasi.embedded), applies the router's
migrations, bulk-loads the tickets with COPY (``--agency`` open tickets of
MDN-PUPR, the rest spread over 99 other agencies and every status; texts drawn from
an Indonesian vocabulary so that words are common, middling or rare), vacuums and
analyses, then times what a desk request runs: ``api.read_page`` (the page plus
one row, and the bounded count) for

- the queue (newest first, 50), a deep keyset page (the 50th), sorted by deadline,
  "unassigned" and "assigned to me";
- search: a common word, a rare word, a prefix, two words.

Prints p50/p99 per query with the load average (the machine is shared), and the
plan's index for each. Target: p99 <= 100 ms each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from awasi import textsearch  # noqa: E402
from awasi.db import create_pool, migrate_schema  # noqa: E402
from bench.support import print_case, scratch_postgres, verdict  # noqa: E402
from services.router import api, db  # noqa: E402
from services.router.app import migrations  # noqa: E402

AGENCY = "MDN-PUPR"
STAFF = [f"pupr.{i}" for i in range(20)]
COMMON = ["jalan", "rusak", "warga", "sudah", "tidak", "lama"]
MIDDLE = ["berlubang", "jembatan", "drainase", "trotoar", "banjir", "aspal", "lampu",
          "gorong", "selokan", "longsor"]
RARE = [f"kelurahan{i}" for i in range(2000)]  # names that occur in few tickets
STATUSES_OPEN = ["assigned", "acknowledged", "waiting_info", "reopened"]
STATUSES_DONE = ["resolved", "closed", "withdrawn"]


# A word only other agencies' tickets have: a search the agency finds nothing for,
# though the word is common in the database (the planner's hardest case).
ELSEWHERE = "pelabuhan"


def text(rng: random.Random, mine: bool) -> str:
    words = rng.sample(COMMON, 3) + rng.sample(MIDDLE, 2) + [rng.choice(RARE)]
    if not mine and rng.random() < 0.3:
        words.append(ELSEWHERE)
    rng.shuffle(words)
    return " ".join(words) + "."


def records(total: int, in_agency: int, seed: int = 7):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(total):
        mine = i % (total // in_agency) == 0 if in_agency else False
        agency = AGENCY if mine else f"AG-{i % 99:02d}"
        status = rng.choice(STATUSES_OPEN) if mine else rng.choice(STATUSES_OPEN + STATUSES_DONE)
        created = start + timedelta(seconds=i * 60)
        due = created + timedelta(days=rng.randint(1, 60)) if status in STATUSES_OPEN else None
        assignee = rng.choice(STAFF) if mine and rng.random() < 0.6 else None
        yield (uuid.UUID(int=rng.getrandbits(128)), f"c-{i}", f"AWS-{i:08X}", "MDN",
               "jalan-rusak", None, text(rng, mine), "anonymous", "r", "api", created, status,
               agency, "bench", due, due, created, assignee)


COLUMNS = ["id", "complaint_id", "tracking_code", "region", "category", "title",
           "description", "privacy", "reporter_ref", "channel", "submitted_at", "status",
           "agency", "rule", "resolve_by", "next_due", "created_at", "assignee"]


async def load(pool, total: int, in_agency: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("tickets", schema_name="router", columns=COLUMNS,
                                         records=records(total, in_agency))
        await conn.execute("VACUUM (FREEZE, ANALYZE) router.tickets")
    return time.perf_counter() - t


CASES: list[tuple[str, dict]] = [
    ("queue, newest first", {}),
    ("queue, 50th keyset page", {"deep": 49}),
    ("queue by deadline", {"sort": "deadline"}),
    ("unassigned", {"assignee": ""}),
    ("assigned to me", {"assignee": "pupr.3"}),
    ("search: common word 'jalan'", {"q": "jalan"}),
    ("search: middling word 'jembatan'", {"q": "jembatan"}),
    ("search: rare word 'kelurahan1234'", {"q": "kelurahan1234"}),
    ("search: prefix 'jemb'", {"q": "jemb"}),
    ("search: two words 'banjir aspal'", {"q": "banjir aspal"}),
    ("search: only elsewhere 'pelabuhan'", {"q": ELSEWHERE}),
    ("search: nowhere 'zzzz'", {"q": "zzzz"}),
]


async def timed_case(pool, spec: dict, samples: int) -> list[float]:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    q = textsearch.prefix_query(spec["q"]) if "q" in spec else None
    f = db.Filters(sort=spec.get("sort", "-created"), assignee=spec.get("assignee"), q=q,
                   limit=50)
    for _ in range(spec.get("deep", 0)):  # follow next tokens to the deep page
        rows, _total = await api.read_page(pool, now, f, agency=AGENCY)
        f = replace(f, after=db.parse_after(f.sort, db.page_token(f.sort, rows[f.limit - 1])))
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        await api.read_page(pool, now, f, agency=AGENCY)
        out.append(time.perf_counter() - t)
    return out


async def plan(pool, spec: dict) -> str:  # type: ignore[no-untyped-def]
    q = textsearch.prefix_query(spec["q"]) if "q" in spec else None
    f = db.Filters(sort=spec.get("sort", "-created"), assignee=spec.get("assignee"), q=q)
    async with pool.acquire() as conn, conn.transaction():
        if q is not None:
            f = await db.plan_search(conn, f, AGENCY)  # as api.read_page
        # The page's own conditions, as db.list_tickets writes them.
        where, args = db._where(datetime.now(UTC), f, AGENCY, None, False)
        order = {"deadline": "coalesce(next_due, 'infinity'::timestamptz), created_at, id"
                 }.get(spec.get("sort", ""), "created_at DESC, id DESC")
        rows = await conn.fetch(f"EXPLAIN SELECT * FROM router.tickets WHERE"
                                f" {' AND '.join(where)} ORDER BY {order} LIMIT 51", *args)
    text_ = " ".join(r[0] for r in rows)
    names = sorted({w for w in text_.replace("(", " ").split() if w.startswith("tickets_")})
    return ", ".join(names) or "seq scan"


async def main(total: int, in_agency: int, samples: int) -> int:
    async with scratch_postgres("awd-") as pg:
        pool = await create_pool(pg.uri(), min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate_schema(conn, "router", migrations())
            took = await load(pool, total, in_agency)
            n = await pool.fetchval("SELECT count(*) FROM router.tickets WHERE agency = $1",
                                    AGENCY)
            print(f"loaded {total:,} tickets ({n:,} open in {AGENCY}) in {took:.0f} s;"
                  f" load average {os.getloadavg()}", flush=True)
            worst = 0.0
            for name, spec in CASES:
                times = await timed_case(pool, spec, samples)
                worst = max(worst, print_case(name, times, await plan(pool, spec)))
            return verdict(worst)
        finally:
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--agency", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.total, args.agency, args.samples)))
