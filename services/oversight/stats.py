"""Public statistics per agency and per region.

Definitions (docs/OVERSIGHT.md says the same in prose):
- received: cases routed to the agency (its current agency after transfers); for a
  region, every case submitted there, routed or not.
- median hours to acknowledge: routed -> first acknowledgement, over acknowledged cases.
- median hours to resolve: routed -> resolution, over resolved cases.
- resolved: ``closed``, or ``resolved`` without an open dispute
  (``awasi.lifecycle.counts_as_resolved``). "Resolved, disputed" never counts.
- share resolved within the deadline: resolved on time / cases whose resolution
  deadline has passed (its breach has fired) or that were marked resolved (disputed
  ones included in the denominator, never in the numerator).
- breaches: deadline breaches fired for the agency; disputes: disputes raised;
  average rating: mean of each case's latest rating; published findings.
Rates (medians, share, average rating) drawn from fewer than ``stats_min_cases``
cases are hidden (``value`` null, ``hidden`` true) and always carry their sample size.
Counts are always shown. Nothing here is about a person.

Medians come from histograms (0.1 h buckets below 24 h, 1 h below 240 h, 10 h above):
at most one bucket below the exact median (services/oversight/rollups.py).

Cost: ``compute`` reads the rollups (services/oversight/rollups.py), which the
consumer keeps in the event's transaction: its cost is the number of agencies and
histogram buckets, not the number of cases. It still does not run per request: the
scheduler refreshes one snapshot row (``oversight.stats_snapshot``) when the
``stats_snapshot`` job falls due (every ``AWASI_STATS_REFRESH_S`` seconds of wall
time, one process at a time, claimed with SKIP LOCKED), and the dashboard, JSON and
CSV read that row. The figures are therefore at most that old (plus one scheduler
interval); each answer carries ``generated_at``. The snapshot stays because a
request must not read thousands of histogram rows under a flood of anonymous
requests; one small row is the cheapest answer there is.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from awasi.catalog import Catalog
from services.oversight import rollups

RATES = ("median_hours_to_acknowledge", "median_hours_to_resolve",
         "share_resolved_within_deadline", "average_rating")
COUNTS = ("received", "resolved", "breaches", "disputes", "published_findings")

# awasi.lifecycle.counts_as_resolved, in SQL (tests/test_lifecycle.py checks both agree).
RESOLVED_SQL = rollups.RESOLVED_SQL

_SUMS = ("SELECT {key} AS key, sum(received) AS received, sum(resolved) AS resolved,"
         " sum(on_time) AS on_time, sum(due_n) AS due_n, sum(ack_n) AS ack_n,"
         " sum(res_n) AS res_n, sum(disputes) AS disputes, sum(rating_n) AS rating_n,"
         " sum(rating_sum) AS rating_sum, sum(breaches) AS breaches"
         " FROM oversight.stats_totals WHERE {key} <> '' GROUP BY 1 ORDER BY 1")
# The medians per agency or region, computed in the database from the all-time
# histograms: a few rows come back instead of every bucket (the refresh runs on the
# event loop that also serves requests).
_HIST = ("SELECT {key} AS key, measure, bucket, sum(n) AS n FROM oversight.stats_hist_totals"
         " WHERE {key} <> '' GROUP BY 1, 2, 3 HAVING sum(n) > 0")
_FINDINGS = ("SELECT {key} AS key, count(*) AS n FROM oversight.findings"
             " WHERE published AND {key} IS NOT NULL GROUP BY 1")


async def _medians(conn: asyncpg.Connection, key: str) -> dict[tuple[str, str], float]:
    """The median (hours) per (``key`` value, measure) from the all-time histograms."""
    rows = await conn.fetch(rollups.MEDIANS_SQL.format(source=_HIST.format(key=key)))
    return {(r["key"], r["measure"]): float(r["median"]) for r in rows}


async def _rows(conn: asyncpg.Connection, key: str) -> list[dict[str, Any]]:
    """Per ``key`` (agency or region): the all-time sums of the rollups, the medians
    from their histograms, and the published findings. Cost: the number of keys and
    histogram buckets, not the number of cases."""
    published = {r["key"]: r["n"] for r in await conn.fetch(_FINDINGS.format(key=key))}
    medians = await _medians(conn, key)
    out = []
    for r in await conn.fetch(_SUMS.format(key=key)):
        if not r["received"]:
            continue  # only facts left (every case moved elsewhere): as before, not listed
        row = {k: int(r[k]) for k in r.keys() if k != "key"}
        row["key"] = r["key"]
        row["ack_median"] = medians.get((r["key"], "ack"))
        row["res_median"] = medians.get((r["key"], "res"))
        row["rating_avg"] = r["rating_sum"] / r["rating_n"] if r["rating_n"] else None
        row["published"] = published.get(r["key"], 0)
        out.append(row)
    return out


def _rate(value: float | None, n: int, min_cases: int, digits: int) -> dict[str, Any]:
    hidden = n < min_cases
    return {"value": None if hidden or value is None else round(float(value), digits),
            "n": int(n), "hidden": hidden}


@dataclass(frozen=True)
class Stats:
    generated_at: datetime
    min_cases: int
    agencies: list[dict[str, Any]]
    regions: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at.isoformat(), "min_cases": self.min_cases,
                "agencies": self.agencies, "regions": self.regions}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Stats:
        return cls(datetime.fromisoformat(body["generated_at"]), body["min_cases"],
                   body["agencies"], body["regions"])


def _figures(row: dict[str, Any], min_cases: int) -> dict[str, Any]:
    share = row["on_time"] / row["due_n"] if row["due_n"] else None
    return {
        "received": row["received"],
        "resolved": row["resolved"],
        "breaches": row["breaches"],
        "disputes": int(row["disputes"]),
        "published_findings": row["published"],
        "median_hours_to_acknowledge": _rate(row["ack_median"], row["ack_n"], min_cases, 1),
        "median_hours_to_resolve": _rate(row["res_median"], row["res_n"], min_cases, 1),
        "share_resolved_within_deadline": _rate(share, row["due_n"], min_cases, 3),
        "average_rating": _rate(row["rating_avg"], row["rating_n"], min_cases, 2),
    }


async def compute(conn: asyncpg.Connection, catalog: Catalog, now: datetime) -> Stats:
    """Every figure of the dashboard, per agency and per region, from the rollups."""
    min_cases = catalog.stats_min_cases
    agencies = []
    for row in await _rows(conn, "agency"):
        a = catalog.agencies.get(row["key"])
        agencies.append({
            "agency": row["key"], "name": a.name if a else row["key"],
            "short_name": a.short_name if a else row["key"],
            "region": a.region if a else None, **_figures(row, min_cases),
        })
    regions = []
    for row in await _rows(conn, "region"):
        r = catalog.regions.get(row["key"])
        regions.append({"region": row["key"], "name": r.name if r else row["key"],
                        **_figures(row, min_cases)})
    return Stats(now, min_cases, agencies, regions)


SNAPSHOT_JOB = "stats_snapshot"


async def store_snapshot(conn: asyncpg.Connection, catalog: Catalog, now: datetime) -> Stats:
    """Compute every figure and store it as the snapshot the public pages read."""
    s = await compute(conn, catalog, now)
    await conn.execute(
        "INSERT INTO oversight.stats_snapshot (id, computed_at, body)"
        " VALUES (true, now(), $1::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET computed_at = now(), body = EXCLUDED.body",
        s.to_json())
    return s


async def refresh_if_due(conn: asyncpg.Connection, catalog: Catalog, now: datetime,
                         interval_s: float) -> bool:
    """Refresh the snapshot if its job is due (by the database's wall clock, so a
    test's frozen business clock does not stop it); True if this call did."""
    async with conn.transaction():
        due = await conn.fetchval(
            "SELECT 1 FROM oversight.jobs WHERE name = $1 AND next_at <= now()"
            " FOR UPDATE SKIP LOCKED", SNAPSHOT_JOB)
        if not due:
            return False
        # Fold the rollups' delta rows first (under this job's lock: one compactor).
        await rollups.compact(conn)
        await store_snapshot(conn, catalog, now)
        await conn.execute(
            "UPDATE oversight.jobs SET next_at = now() + make_interval(secs => $2)"
            " WHERE name = $1", SNAPSHOT_JOB, interval_s)
    return True


async def current(conn: asyncpg.Connection, catalog: Catalog, now: datetime) -> Stats:
    """The latest snapshot; computed here only if none was ever stored (the first
    request after the very first start)."""
    body = await conn.fetchval("SELECT body FROM oversight.stats_snapshot")
    if body is not None:
        return Stats.from_json(body)
    return await store_snapshot(conn, catalog, now)


async def published_findings(conn: asyncpg.Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT agency, region, outcome, maladministration_type, recommendation, recorded_at"
        " FROM oversight.findings WHERE published ORDER BY recorded_at DESC, id DESC LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]


CSV_COLUMNS = ["scope", "code", "name", "region", *COUNTS,
               *(f"{r}{s}" for r in RATES for s in ("", "_n"))]


def to_csv(stats: Stats) -> str:
    """The same figures as the JSON, one row per agency and per region; a hidden rate
    is an empty cell, its sample size is always there."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for scope, items, key in (("agency", stats.agencies, "agency"),
                              ("region", stats.regions, "region")):
        for it in items:
            row: list[Any] = [scope, it[key], it["name"],
                              it.get("region") if scope == "agency" else it[key]]
            row += [it[c] for c in COUNTS]
            for r in RATES:
                row += ["" if it[r]["value"] is None else it[r]["value"], it[r]["n"]]
            w.writerow(row)
    return out.getvalue()
