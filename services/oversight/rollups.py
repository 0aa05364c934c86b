"""Rollups of the cases: what the statistics, the dashboard and the period reports read.

A case *contributes* a vector of counters (received, resolved, on time, ...) and up
to two durations (routed -> acknowledged, routed -> resolved) to a few keys: all time
per (region, agency), and per (region, local submission month, agency, category,
channel) — the reports' periods are whole months — with the durations per (region,
month, agency) and per (region, month) (agency ``ALL_AGENCIES``). ``domain.save_case`` calls
``apply_change`` with the case before and after each event, in the consumer's
transaction: the contribution before is subtracted and the one after added, so the
rollups always equal an aggregation of the cases from scratch (``rebuild`` computes
exactly that, and tests/test_rollups.py checks both agree). Breaches and level-2
escalations are facts, not state: the scheduler adds them with ``add_fact`` when it
fires them, under the deadline's agency (as the statistics always counted them).

Durations are kept as histograms with buckets of 0.1 h below 24 h, 1 h below 240 h
and 10 h above (``bucket``); a median read from them is the percentile_cont median of
the bucketed values, so it is at most one bucket below the exact median (0.1 h; 1 h,
at most 4% of the value; 10 h, at most 4%). The histograms' size is bounded by the
bucket count (at most about 640 per key and measure), not by the cases.

Keys hold '' where a case has no region, agency, category or channel yet.

Writers only INSERT delta rows (``compact`` false). The consumer applies chunks of
events per transaction on several partitions at once and the scheduler fires
batches: with upserts, two of them touching the same keys in different orders would
deadlock, and every event of today's complaints would queue on the same few rows.
``compact`` (run by the scheduler before each statistics snapshot) folds the deltas
into one row per key (``compact`` true, unique per key); readers sum both kinds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from awasi import lifecycle
from awasi.catalog import Catalog

COUNTERS = ("received", "resolved", "on_time", "due_n", "ack_n", "res_n", "disputes",
            "disputed_cases", "rating_n", "rating_sum", "rating_1", "rating_2", "rating_3",
            "rating_4", "rating_5", "breaches", "escalations2")
MEASURES = ("ack", "res")
# Bucket widths: 0.1 h (360 s) below 24 h, 1 h below 240 h, 10 h above.
_FINE, _HOUR, _TEN = timedelta(seconds=360), timedelta(hours=1), timedelta(hours=10)
_HOURS_FROM, _TENS_FROM = timedelta(hours=24), timedelta(hours=240)
REBUILD_JOB = "stats_rollups_rebuild"
# The monthly histograms also keep a region-wide row per bucket under this agency
# code: a region's report reads a quarter's few hundred buckets, not every agency's.
ALL_AGENCIES = "*"
# awasi.lifecycle.counts_as_resolved, in SQL (tests/test_lifecycle.py checks both agree).
RESOLVED_SQL = "(status = 'closed' OR (status = 'resolved' AND NOT resolution_disputed))"


def bucket(duration: timedelta) -> int:
    """The duration's bucket: its lower edge in tenths of an hour (floor), at 0.1 h
    resolution below 24 h, 1 h below 240 h and 10 h above."""
    if duration < _HOURS_FROM:
        return duration // _FINE
    if duration < _TENS_FROM:
        return 10 * (duration // _HOUR)
    return 100 * (duration // _TEN)


# The same function in SQL, for the rebuild (extract(epoch ...) is exact numeric).
_BUCKET_SQL = ("(CASE WHEN {d} < interval '24 hours'"
               " THEN floor(extract(epoch FROM {d}) / 360)"
               " WHEN {d} < interval '240 hours'"
               " THEN 10 * floor(extract(epoch FROM {d}) / 3600)"
               " ELSE 100 * floor(extract(epoch FROM {d}) / 36000) END)::int")


def local_day(catalog: Catalog, region: str | None, at: datetime) -> date:
    """``at`` as a date in the region's time zone (UTC for a region the catalog lacks)."""
    r = catalog.regions.get(region) if region else None
    return at.astimezone(ZoneInfo(r.timezone if r else "UTC")).date()


@dataclass(frozen=True)
class Contribution:
    """What one case adds to the rollups."""

    total_key: tuple[str, str]                          # region, agency
    month_key: tuple[str, date, str, str, str] | None   # region, month, agency, cat., channel
    month: date | None
    counts: tuple[int, ...]                               # in COUNTERS order
    durations: tuple[tuple[str, int], ...]                # (measure, bucket)


def contribution(catalog: Catalog, case: Mapping[str, Any]) -> Contribution | None:
    """The case's contribution (None for a row that knows neither region nor agency:
    the statistics count it nowhere)."""
    region = case["region"] or ""
    agency = case["agency"] or ""
    if not region and not agency:
        return None
    resolved = lifecycle.counts_as_resolved(case["status"], case["resolution_disputed"])
    routed, ack, res = case["routed_at"], case["acknowledged_at"], case["resolved_at"]
    rating = case["rating"]
    c = dict.fromkeys(COUNTERS, 0)
    c["received"] = 1
    c["resolved"] = int(resolved)
    c["on_time"] = int(resolved and bool(case["resolved_on_time"]))
    c["due_n"] = int(case["resolve_by"] is not None
                     and (res is not None or bool(case["resolve_breached"])))
    durations = []
    if ack is not None and routed is not None:
        c["ack_n"] = 1
        durations.append(("ack", bucket(ack - routed)))
    if resolved and routed is not None and res is not None:
        c["res_n"] = 1
        durations.append(("res", bucket(res - routed)))
    c["disputes"] = case["dispute_count"]
    c["disputed_cases"] = int(case["dispute_count"] > 0)
    if rating is not None:
        c["rating_n"] = 1
        c["rating_sum"] = rating
        if 1 <= rating <= 5:
            c[f"rating_{rating}"] = 1
    month_key = None
    month = None
    if region and case["submitted_at"] is not None:
        month = local_day(catalog, region, case["submitted_at"]).replace(day=1)
        month_key = (region, month, agency, case["category"] or "", case["channel"] or "")
    return Contribution((region, agency), month_key, month,
                        tuple(c[k] for k in COUNTERS), tuple(durations))


_COLS = ", ".join(COUNTERS)
_ARGS_TOTAL = ", ".join(f"${i + 3}" for i in range(len(COUNTERS)))
_ARGS_MONTHLY = ", ".join(f"${i + 6}" for i in range(len(COUNTERS)))
INSERT_TOTAL = (f"INSERT INTO oversight.stats_totals (region, agency, {_COLS})"
                f" VALUES ($1, $2, {_ARGS_TOTAL})")
INSERT_MONTHLY = (f"INSERT INTO oversight.stats_monthly (region, month, agency, category,"
                  f" channel, {_COLS}) VALUES ($1, $2, $3, $4, $5, {_ARGS_MONTHLY})")
INSERT_HIST_TOTAL = ("INSERT INTO oversight.stats_hist_totals (region, agency, measure,"
                     " bucket, n) VALUES ($1, $2, $3, $4, $5)")
INSERT_HIST_MONTH = ("INSERT INTO oversight.stats_hist_monthly (region, month, agency,"
                     " measure, bucket, n) VALUES ($1, $2, $3, $4, $5, $6)")


def _merge(rows: dict[Any, list[int]], key: Any, values: Iterable[int], sign: int) -> None:
    acc = rows.setdefault(key, [0] * len(COUNTERS))
    for i, v in enumerate(values):
        acc[i] += sign * v


async def apply_change(conn: asyncpg.Connection, catalog: Catalog,
                       before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Move the case's contribution from ``before`` to ``after`` (call in the
    transaction that saves the case). Nothing is written when it did not change."""
    old, new = contribution(catalog, before), contribution(catalog, after)
    if old == new:
        return
    totals: dict[Any, list[int]] = {}
    monthly: dict[Any, list[int]] = {}
    hist_t: dict[Any, int] = {}
    hist_m: dict[Any, int] = {}
    for contrib, sign in ((old, -1), (new, 1)):
        if contrib is None:
            continue
        _merge(totals, contrib.total_key, contrib.counts, sign)
        if contrib.month_key is not None:
            _merge(monthly, contrib.month_key, contrib.counts, sign)
        region, agency = contrib.total_key
        for measure, b in contrib.durations:
            k = (region, agency, measure, b)
            hist_t[k] = hist_t.get(k, 0) + sign
            if contrib.month is not None:
                for who in (agency, ALL_AGENCIES):
                    km = (region, contrib.month, who, measure, b)
                    hist_m[km] = hist_m.get(km, 0) + sign
    if rows := [(*k, *v) for k, v in totals.items() if any(v)]:
        await conn.executemany(INSERT_TOTAL, rows)
    if rows := [(*k, *v) for k, v in monthly.items() if any(v)]:
        await conn.executemany(INSERT_MONTHLY, rows)
    if rows := [(*k, n) for k, n in hist_t.items() if n]:
        await conn.executemany(INSERT_HIST_TOTAL, rows)
    if rows := [(*k, n) for k, n in hist_m.items() if n]:
        await conn.executemany(INSERT_HIST_MONTH, rows)


async def add_fact(conn: asyncpg.Connection, catalog: Catalog, case: Mapping[str, Any],
                   agency: str | None, counter: str) -> None:
    """Count one fired breach or level-2 escalation (``counter``) of ``case`` for
    ``agency`` (the deadline's), in the scheduler's transaction that fires it."""
    assert counter in ("breaches", "escalations2")
    values = [int(k == counter) for k in COUNTERS]
    region = case["region"] or ""
    await conn.execute(INSERT_TOTAL, region, agency or "", *values)
    if region and case["submitted_at"] is not None:
        month = local_day(catalog, region, case["submitted_at"]).replace(day=1)
        await conn.execute(INSERT_MONTHLY, region, month, agency or "", "", "", *values)


# --- from scratch ---------------------------------------------------------------------

def _tz_values(catalog: Catalog) -> tuple[str, list[str]]:
    codes = sorted(catalog.regions)
    args = [x for c in codes for x in (c, catalog.regions[c].timezone)]
    rows = ", ".join(f"(${2 * i + 1}::text, ${2 * i + 2}::text)" for i in range(len(codes)))
    return rows or "(NULL::text, NULL::text)", args


_CASE_SUMS = """
    count(*) AS received,
    count(*) FILTER (WHERE {resolved}) AS resolved,
    count(*) FILTER (WHERE {resolved} AND resolved_on_time) AS on_time,
    count(*) FILTER (WHERE resolve_by IS NOT NULL
                     AND (resolved_at IS NOT NULL OR breached)) AS due_n,
    count(*) FILTER (WHERE acknowledged_at IS NOT NULL AND routed_at IS NOT NULL) AS ack_n,
    count(*) FILTER (WHERE {resolved} AND routed_at IS NOT NULL AND resolved_at IS NOT NULL)
        AS res_n,
    coalesce(sum(dispute_count), 0) AS disputes,
    count(*) FILTER (WHERE dispute_count > 0) AS disputed_cases,
    count(rating) AS rating_n,
    coalesce(sum(rating), 0) AS rating_sum,
    count(*) FILTER (WHERE rating = 1) AS rating_1,
    count(*) FILTER (WHERE rating = 2) AS rating_2,
    count(*) FILTER (WHERE rating = 3) AS rating_3,
    count(*) FILTER (WHERE rating = 4) AS rating_4,
    count(*) FILTER (WHERE rating = 5) AS rating_5,
    0 AS breaches, 0 AS escalations2
"""

# The cases as the rollups key them, a subquery of every rebuild statement (no
# temporary table: a service's own database role may not create one).
_CASES = """(
SELECT c.*, coalesce(c.region, '') AS r, coalesce(c.agency, '') AS a,
       CASE WHEN c.region IS NOT NULL AND c.submitted_at IS NOT NULL
            THEN date_trunc('month', c.submitted_at AT TIME ZONE coalesce(z.tz, 'UTC'))::date
       END AS d,
       {resolved_expr} AS is_resolved,
       -- From the deadlines, not from cases.resolve_breached (which the consumer and
       -- the scheduler keep): a from-scratch check of that column too.
       EXISTS (SELECT 1 FROM oversight.deadlines dl WHERE dl.complaint_id = c.complaint_id
               AND dl.status = 'fired' AND dl.step = 'breach' AND dl.kind = 'resolve'
               AND dl.due_at = c.resolve_by) AS breached
FROM oversight.cases c LEFT JOIN (VALUES {tz}) AS z(code, tz) ON z.code = c.region
WHERE c.region IS NOT NULL OR c.agency IS NOT NULL) AS rc"""

TABLES = ("stats_totals", "stats_monthly", "stats_hist_totals", "stats_hist_monthly")
KEYS = {"stats_totals": ("region", "agency"),
        "stats_monthly": ("region", "month", "agency", "category", "channel"),
        "stats_hist_totals": ("region", "agency", "measure", "bucket"),
        "stats_hist_monthly": ("region", "month", "agency", "measure", "bucket")}


def _values(table: str) -> tuple[str, ...]:
    return ("n",) if table.startswith("stats_hist") else COUNTERS


async def rebuild(conn: asyncpg.Connection, catalog: Catalog) -> None:
    """Recompute every rollup from the cases and the fired deadlines (the backfill
    after the migration, and ``awasi stats rebuild``), as deltas, then compact them.
    Run it in a transaction: it locks the rollup tables against the consumer and the
    scheduler meanwhile."""
    await conn.execute(f"LOCK TABLE {', '.join('oversight.' + t for t in TABLES)}"
                       " IN EXCLUSIVE MODE")
    # DELETE, not TRUNCATE: the service's own role may delete rows but not truncate.
    for table in TABLES:
        await conn.execute(f"DELETE FROM oversight.{table}")
    tz, args = _tz_values(catalog)
    cases = _CASES.format(tz=tz, resolved_expr=RESOLVED_SQL)

    async def run(sql: str) -> None:
        await conn.execute(sql.replace("ROLLUP_CASES", cases), *args)

    sums = _CASE_SUMS.format(resolved="is_resolved")
    await run(
        f"INSERT INTO oversight.stats_totals (region, agency, {_COLS})"
        f" SELECT r, a, {sums} FROM ROLLUP_CASES GROUP BY 1, 2")
    await run(
        f"INSERT INTO oversight.stats_monthly (region, month, agency, category, channel,"
        f" {_COLS}) SELECT r, d, a, coalesce(category, ''), coalesce(channel, ''), {sums}"
        " FROM ROLLUP_CASES WHERE d IS NOT NULL GROUP BY 1, 2, 3, 4, 5")
    for measure, start, cond in (("ack", "acknowledged_at", "TRUE"),
                                 ("res", "resolved_at", "is_resolved")):
        b = _BUCKET_SQL.format(d=f"({start} - routed_at)")
        where = f"{start} IS NOT NULL AND routed_at IS NOT NULL AND {cond}"
        # The histograms' rows come out of these statements one per key (the GROUP BY
        # is the key): written compacted at once, so the compaction below has nothing
        # of theirs to fold (at 1M complaints that was 860,000 rows deleted and
        # inserted again).
        await run(
            "INSERT INTO oversight.stats_hist_totals (region, agency, measure, bucket, n,"
            f" compact) SELECT r, a, '{measure}', {b}, count(*), true FROM ROLLUP_CASES"
            f" WHERE {where} GROUP BY 1, 2, 3, 4")
        for who in ("a", f"'{ALL_AGENCIES}'"):
            await run(
                "INSERT INTO oversight.stats_hist_monthly"
                " (region, month, agency, measure, bucket, n, compact)"
                f" SELECT r, d, {who}, '{measure}', {b}, count(*), true"
                f" FROM ROLLUP_CASES WHERE d IS NOT NULL AND {where} GROUP BY 1, 2, 3, 4, 5")
    # Fired breaches and level-2 escalations, under the deadline's agency.
    zero = ", ".join("0" for _ in COUNTERS[:-2])
    facts = ("SELECT rc.r, coalesce(dl.agency, '') AS fa, rc.d,"
             " count(*) FILTER (WHERE dl.step = 'breach') AS b,"
             " count(*) FILTER (WHERE dl.step = 'escalation2') AS e"
             " FROM oversight.deadlines dl JOIN ROLLUP_CASES USING (complaint_id)"
             " WHERE dl.status = 'fired' AND dl.step IN ('breach', 'escalation2')"
             " GROUP BY 1, 2, 3")
    await run(
        f"INSERT INTO oversight.stats_totals (region, agency, {_COLS})"
        f" SELECT r, fa, {zero}, b, e FROM ({facts}) f")
    await run(
        f"INSERT INTO oversight.stats_monthly (region, month, agency, category, channel,"
        f" {_COLS}) SELECT r, d, fa, '', '', {zero}, b, e FROM ({facts}) f WHERE d IS NOT NULL")
    await compact(conn)
    await conn.execute("DELETE FROM oversight.jobs WHERE name = $1", REBUILD_JOB)


async def compact(conn: asyncpg.Connection) -> None:
    """Fold the delta rows into one compacted row per key (one statement per table:
    the deltas it deletes are exactly those it adds). Only the scheduler (one process
    at a time, under the statistics job's row lock) and the rebuild call this: the
    compacted rows have no other writer, so the upserts wait on nobody."""
    for table in TABLES:
        keys = ", ".join(KEYS[table])
        values = _values(table)
        await conn.execute(
            f"WITH d AS (DELETE FROM oversight.{table} WHERE NOT compact"
            f"  RETURNING {keys}, {', '.join(values)})"
            f" INSERT INTO oversight.{table} AS t ({keys}, {', '.join(values)}, compact)"
            f" SELECT {keys}, {', '.join(f'sum({v})' for v in values)}, true FROM d"
            f" GROUP BY {keys}"
            f" ON CONFLICT ({keys}) WHERE compact DO UPDATE SET "
            + ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values))


async def rebuild_if_asked(conn: asyncpg.Connection, catalog: Catalog) -> bool:
    """Run the backfill once after the migration asked for it (several processes
    starting at once: one does it, the others wait on the job row and find it gone)."""
    async with conn.transaction():
        asked = await conn.fetchval(
            "SELECT 1 FROM oversight.jobs WHERE name = $1 FOR UPDATE", REBUILD_JOB)
        if not asked:
            return False
        await rebuild(conn, catalog)
    return True


# --- reading --------------------------------------------------------------------------

# percentile_cont(0.5) of bucketed values, in hours, per (key, measure), computed in
# the database (``median`` below is the same in Python): with N values in bucket order,
# the median is the mean of the values at positions floor((N-1)/2) and ceil((N-1)/2).
# {source} yields (key, measure, bucket, n) with n > 0 and one row per bucket.
MEDIANS_SQL = """
WITH h AS ({source}),
c AS (SELECT key, measure, bucket,
             sum(n) OVER (PARTITION BY key, measure ORDER BY bucket) AS cum,
             sum(n) OVER (PARTITION BY key, measure) AS total FROM h)
SELECT key, measure, total,
       (min(bucket) FILTER (WHERE cum > floor((total - 1) / 2.0))
        + min(bucket) FILTER (WHERE cum > ceil((total - 1) / 2.0))) / 20.0 AS median
FROM c GROUP BY key, measure, total
"""

def median(histogram: Iterable[tuple[int, int]]) -> float | None:
    """percentile_cont(0.5) of the bucketed values, in hours. ``histogram``: (bucket,
    count) pairs in bucket order; counts of 0 or less are ignored."""
    pairs = [(b, n) for b, n in histogram if n > 0]
    total = sum(n for _, n in pairs)
    if total == 0:
        return None
    pos = (total - 1) / 2
    lo_i, hi_i = int(pos), int(pos) + (pos != int(pos))

    def at(index: int) -> int:
        seen = 0
        for b, n in pairs:
            seen += n
            if index < seen:
                return b
        raise AssertionError("index beyond the histogram")

    lo, hi = at(lo_i), at(hi_i)
    return (lo + (hi - lo) * (pos - lo_i)) / 10
