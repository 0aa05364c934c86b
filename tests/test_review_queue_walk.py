"""The panel's queue page (services/oversight/panel.py, review_queue) walks the open
review items oldest first and keeps each case's oldest open item: the same cases, in
the same order, as grouping every open item by case, for every filter and across
keyset pages; cases with several open items, ties and closed items included."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from awasi.db import create_pool, migrate_schema
from services.oversight import panel
from services.oversight.app import SCHEMA, migrations

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
REASONS = ["breach", "dispute", "low_rating", "audit_sample"]


def expected(items: list[dict], cases: dict[str, dict], f: panel.QueueFilter) -> list[str]:
    """The queue as the grouping query defined it, in Python: open items of the
    region/agency/code filter grouped by case, a case kept if any of its open items has
    the reason and its oldest is old enough, ordered by (oldest, complaint id)."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        c = cases[it["complaint_id"]]
        if it["closed_at"] is not None:
            continue
        if f.region and c["region"] != f.region or f.agency and c["agency"] != f.agency:
            continue
        if f.code and not c["tracking_code"].upper().startswith(f.code.upper()):
            continue
        groups.setdefault(it["complaint_id"], []).append(it)
    keyed = []
    for cid, its in groups.items():
        since = min(i["created_at"] for i in its)
        if f.reason and not any(i["reason"] == f.reason for i in its):
            continue
        if f.min_age_days is not None and since > NOW - timedelta(days=f.min_age_days):
            continue
        keyed.append((since, cid))
    return [cid for _, cid in sorted(keyed)]


async def test_the_walk_pages_the_same_cases_as_grouping(database_url: str) -> None:
    rnd = random.Random(17)
    pool = await create_pool(database_url, min_size=1, max_size=1)  # its JSON codecs
    try:
        conn = await pool.acquire()
        await migrate_schema(conn, SCHEMA, migrations())
        cases = {}
        for n in range(60):
            region = rnd.choice(["MDN", "PLJ"])
            cases[f"c-{n:03d}"] = {"complaint_id": f"c-{n:03d}",
                                   "tracking_code": f"AWS-{n:08X}", "region": region,
                                   "agency": f"{region}-AG{n % 3}"}
        await conn.executemany(
            "INSERT INTO oversight.cases (complaint_id, tracking_code, region, category,"
            " agency, status, submitted_at, routed_at)"
            " VALUES ($1, $2, $3, 'jalan-rusak', $4, 'acknowledged', $5, $5)",
            [(c["complaint_id"], c["tracking_code"], c["region"], c["agency"],
              NOW - timedelta(days=30)) for c in cases.values()])
        items = []
        # A few moments only, so that many items share one (ties between cases and
        # inside a case); some cases with several open items, some all closed.
        moments = [NOW - timedelta(days=d) for d in (20, 9, 9, 5, 2, 1)]
        for cid in cases:
            for k in range(rnd.choice([0, 1, 1, 2, 3])):
                items.append({
                    "complaint_id": cid, "reason": rnd.choice(REASONS),
                    "source": f"t:{cid}:{k}", "created_at": rnd.choice(moments),
                    "closed_at": NOW if rnd.random() < 0.3 else None})
        rnd.shuffle(items)
        await conn.executemany(
            "INSERT INTO oversight.review_items (complaint_id, reason, source, created_at,"
            " closed_at) VALUES ($1, $2, $3, $4, $5)",
            [(i["complaint_id"], i["reason"], i["source"], i["created_at"], i["closed_at"])
             for i in items])
        await conn.execute("ANALYZE oversight.review_items")
        filters = [{}, {"reason": "dispute"}, {"region": "PLJ"}, {"agency": "MDN-AG1"},
                   {"min_age_days": 6}, {"code": "AWS-0000001"},
                   {"region": "MDN", "reason": "breach", "min_age_days": 1.5}]
        checked = 0
        for spec in filters:
            want = expected(items, cases, panel.QueueFilter(**spec))
            for limit in (500, 4):  # one page, and keyset pages of four
                got: list[str] = []
                after = None
                while True:
                    page = await panel.review_queue(
                        conn, NOW, panel.QueueFilter(**spec, limit=limit, after=after))
                    got += [p["complaint_id"] for p in page]
                    if len(page) < limit:
                        break
                    after = panel.queue_cursor(page[-1])
                assert got == want, (spec, limit)
            checked += len(want)
            # Each case's place is its oldest open item, and every open reason shows.
            for p in await panel.review_queue(conn, NOW, panel.QueueFilter(**spec)):
                mine = [i for i in items if i["complaint_id"] == p["complaint_id"]
                        and i["closed_at"] is None]
                assert p["since"] == min(i["created_at"] for i in mine).isoformat()
                assert sorted(r["reason"] for r in p["reasons"]) == sorted(
                    i["reason"] for i in mine)
        assert checked > 40  # the filters found cases to compare
        await pool.release(conn)
    finally:
        await pool.close()
