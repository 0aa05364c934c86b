"""The period reports read their histograms by an index-only scan, however the rows lie.

The consumers and the compactor write ``oversight.stats_hist_monthly`` one row at a
time, so the rows of one report's key end up one per heap page: read through a plain
index, a year's report touched a heap page per row (about 5,000 at 1,000,000
complaints, docs/BENCHMARKS.md). The covering index of migration 1400 answers the
read from the index alone. Here the table holds many regions' and agencies' months,
inserted in random order (each key's rows scattered over the heap) and vacuumed (as
autovacuum keeps it); the real ``reports.figures`` runs with a query logger, and the
plan of its histogram statement, run with the arguments it ran with, must be an index
only scan of the covering index that fetched nothing from the heap.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from awasi.catalog import load_catalog
from awasi.periods import Period
from awasi.settings import DEMO_CATALOG
from services.oversight import reports
from tests.support.plans import StatementLog

REGIONS = 10
MONTHS = 24  # 2024 and 2025
AGENCIES = ("*", "A1", "A2", "A3")
BUCKETS = 50


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree."""
    out = [plan]
    for child in plan.get("Plans", ()):
        out += nodes(child)
    return out


async def test_year_report_histograms_come_from_the_index_alone(database_url: str) -> None:
    catalog = load_catalog(DEMO_CATALOG)
    region = "MDN"
    assert region in catalog.regions
    conn = await asyncpg.connect(database_url)
    try:
        # MDN and nine other regions; every key once (compacted), in random order.
        await conn.execute(
            "INSERT INTO oversight.stats_hist_monthly"
            " (region, month, agency, measure, bucket, n, compact)"
            " SELECT CASE WHEN r = 0 THEN $1 ELSE 'R' || r END,"
            "        date '2024-01-01' + make_interval(months => m), a, ms, b, 1 + b % 7, true"
            " FROM generate_series(0, $2 - 1) r, generate_series(0, $3 - 1) m,"
            "      unnest($4::text[]) a, unnest(ARRAY['ack', 'res']) ms,"
            "      generate_series(0, $5 - 1) b"
            " ORDER BY random()", region, REGIONS, MONTHS, list(AGENCIES), BUCKETS)
        await conn.execute("VACUUM ANALYZE oversight.stats_hist_monthly")

        log = StatementLog()
        conn.add_query_logger(log)
        figures = await reports.figures(conn, catalog, region, Period.parse("2025"), None)
        conn.remove_query_logger(log)
        # The histograms were read: every bucket of the region's '*' rows, 12 months.
        assert figures["median_hours_to_acknowledge"]["n"] == 12 * sum(
            1 + b % 7 for b in range(BUCKETS))

        reads = [(q, a) for q, a in log if "stats_hist_monthly" in q]
        assert len(reads) == 1, reads
        query, args = reads[0]
        plan = json.loads(await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args))[0]["Plan"]
        scans = [n for n in nodes(plan) if n.get("Relation Name") == "stats_hist_monthly"]
        assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [
            ("Index Only Scan", "stats_hist_monthly_cover")], scans
        assert scans[0]["Heap Fetches"] == 0
        assert scans[0]["Actual Rows"] == 12 * 2 * BUCKETS
    finally:
        await conn.close()
