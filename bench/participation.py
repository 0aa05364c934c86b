"""Measure the public list and the similar-reports lookup with many public reports.

    .venv/bin/python bench/participation.py [--reports 1000000] [--samples 300]

Starts its own embedded PostgreSQL (awasi.embedded), applies intake's migrations,
loads ``--reports`` public reports with COPY (Indonesian text built from phrases of
real complaints, the five demo cities with pins in their boxes, statuses, supports
with a long tail, two years of dates), vacuums and analyses, then times, each
``--samples`` times with random parameters, the statements the service runs:

- a page of ``GET /api/v1/reports``: newest first and by support, unfiltered, by
  region, by category, by status, ``near`` a point, and a page deep in the walk
  (the token of a report far down the list);
- ``GET /api/v1/reports/similar``: the lookup for a new report's text.

Prints p50/p99/max per kind. Target: p99 under 100 ms each (the public list is one
indexed walk per page; the lookup compares a bounded number of candidates).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from awasi.catalog import load_catalog  # noqa: E402
from awasi.db import create_pool, migrate_schema  # noqa: E402
from awasi.settings import DEMO_CATALOG  # noqa: E402
from bench.stats import pct  # noqa: E402
from bench.support import scratch_postgres  # noqa: E402
from services.intake import participation, reports  # noqa: E402
from services.intake.app import migrations  # noqa: E402
from services.intake.domain import CROCKFORD  # noqa: E402

CATEGORIES = ("jalan-rusak", "sampah", "lampu-jalan", "drainase", "asn-pungli", "puskesmas",
              "adminduk-ktp", "sekolah")
PROBLEMS = {
    "jalan-rusak": ["jalan berlubang", "aspal mengelupas", "jalan amblas", "jembatan retak",
                    "trotoar rusak", "genangan air di jalan"],
    "sampah": ["sampah menumpuk", "sampah tidak diangkut", "TPS liar", "sampah dibakar",
               "bau busuk dari tumpukan sampah"],
    "lampu-jalan": ["lampu jalan mati", "tiang lampu miring", "lampu penerangan padam",
                    "kabel lampu terkelupas"],
    "drainase": ["saluran air tersumbat", "got meluap", "banjir setiap hujan",
                 "parit tertutup sampah"],
    "asn-pungli": ["pungutan liar", "diminta uang tanpa kuitansi", "biaya tambahan tidak resmi"],
    "puskesmas": ["antrean puskesmas sangat lama", "dokter tidak hadir", "obat habis"],
    "adminduk-ktp": ["KTP elektronik belum jadi", "blanko KTP habis", "pelayanan KTP lambat"],
    "sekolah": ["atap kelas bocor", "pungutan seragam sekolah", "guru sering tidak hadir"],
}
PLACES = ["di depan sekolah dasar", "dekat pasar", "di simpang empat", "di depan masjid",
          "di gang sempit", "dekat kantor kelurahan", "di samping puskesmas",
          "di jalan utama", "dekat terminal", "di perumahan warga"]
STREETS = ["Jl. Merdeka", "Jl. Gatot Subroto", "Jl. Sudirman", "Jl. Diponegoro",
           "Jl. Ahmad Yani", "Jl. Imam Bonjol", "Jl. Sisingamangaraja", "Jl. Basuki Rahmat",
           "Jl. Kartini", "Jl. Pemuda"]
SINCE = ["sejak dua minggu", "sudah sebulan", "sejak kemarin", "sudah tiga hari",
         "berbulan-bulan", "sejak awal tahun"]
EFFECTS = ["membahayakan pengendara motor", "warga terganggu", "anak-anak sering terjatuh",
           "mohon segera ditangani", "sudah dilaporkan ke RT tapi belum ada tindakan",
           "menimbulkan bau dan lalat"]
# Statuses of the one lifecycle (awasi/lifecycle.py), weighted as a city's open queue.
STATUSES = ["assigned"] * 5 + ["acknowledged"] * 3 + ["submitted", "triage", "waiting_info",
                                                     "reopened", "resolved", "closed"]
COLUMNS = ("id", "tracking_code", "region", "category", "title", "description", "lat", "lon",
           "address", "privacy", "channel", "reporter_ref", "secret_hash", "status",
           "submitted_at", "updated_at", "visibility", "support_count")


def text(rng: random.Random, category: str) -> str:
    return (f"{rng.choice(PROBLEMS[category]).capitalize()} {rng.choice(PLACES)} "
            f"{rng.choice(STREETS)} no. {rng.randint(1, 300)}, {rng.choice(SINCE)}. "
            f"{rng.choice(EFFECTS).capitalize()}.")


def code(region: str, i: int) -> str:
    body = "".join(CROCKFORD[(i >> (5 * k)) & 31] for k in range(8))
    return f"{region}-{body[:4]}-{body[4:]}"


def rows(n: int, regions: list[tuple[str, object]], seed: int = 7):  # type: ignore[no-untyped-def]
    import uuid

    rng = random.Random(seed)
    now = datetime.now(UTC)
    secret = hashlib.sha256(b"bench").digest()
    for i in range(n):
        region, box = regions[i % len(regions)]
        category = rng.choice(CATEGORIES)
        at = now - timedelta(seconds=rng.randint(0, 2 * 365 * 86_400))
        located = rng.random() < 0.7
        lat = rng.uniform(box.south, box.north) if located else None  # type: ignore[attr-defined]
        lon = rng.uniform(box.west, box.east) if located else None  # type: ignore[attr-defined]
        supports = int(rng.paretovariate(1.5)) - 1 if rng.random() < 0.4 else 0
        yield (uuid.UUID(int=rng.getrandbits(128)), code(region, i), region, category, None,
               text(rng, category), lat, lon, rng.choice(STREETS), "anonymous", "web",
               f"rr_{i}", secret, rng.choice(STATUSES), at, at, "public", supports)


async def load(pool, n: int, regions) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("complaints", schema_name="intake", columns=COLUMNS,
                                         records=rows(n, regions))
        await conn.execute("VACUUM (FREEZE, ANALYZE) intake.complaints")
    return time.perf_counter() - start


async def timed(pool, sql: str, args: list) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    await pool.fetch(sql, *args)
    return (time.perf_counter() - start) * 1000


async def measure(pool, samples: int, regions, trigram: bool) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    rng = random.Random(11)
    codes = [r for r, _ in regions]
    out: dict[str, list[float]] = {}

    async def page(kind: str, q: reports.ReportQuery) -> None:
        sql, args = reports.page_sql(q)
        out.setdefault(kind, []).append(await timed(pool, sql, args))

    deep = await pool.fetch(
        "SELECT tracking_code, submitted_at, support_count FROM intake.complaints"
        " WHERE visibility = 'public' ORDER BY random() LIMIT $1", samples)
    for i in range(samples):
        region = rng.choice(codes)
        box = dict(regions)[region]
        await page("newest, no filter", reports.ReportQuery())
        await page("newest, region", reports.ReportQuery(region=region))
        await page("newest, category", reports.ReportQuery(category=rng.choice(CATEGORIES)))
        await page("newest, status", reports.ReportQuery(status=rng.choice(STATUSES)))
        await page("newest, region + near 2 km", reports.ReportQuery(
            region=region, near=(rng.uniform(box.south, box.north),
                                 rng.uniform(box.west, box.east))))
        d = deep[i % len(deep)]
        await page("newest, deep page", reports.ReportQuery(
            after=(d["submitted_at"], d["tracking_code"])))
        await page("by support, no filter", reports.ReportQuery(sort="support"))
        await page("by support, region", reports.ReportQuery(sort="support", region=region))
        await page("by support, deep page", reports.ReportQuery(
            sort="support", after=(d["support_count"], d["submitted_at"], d["tracking_code"])))
        category = rng.choice(CATEGORIES)
        new_text = text(rng, category)
        start = time.perf_counter()
        await participation.similar(pool, trigram, region, category, new_text)
        out.setdefault("similar reports", []).append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        await participation.similar(pool, trigram, region, category, new_text,
                                    rng.uniform(box.south, box.north),
                                    rng.uniform(box.west, box.east))
        out.setdefault("similar reports, with a pin", []).append(
            (time.perf_counter() - start) * 1000)
    return out


async def main(n: int, samples: int) -> None:
    catalog = load_catalog(DEMO_CATALOG)
    regions = [(r.code, r.bbox) for r in catalog.regions.values() if r.bbox is not None]
    async with scratch_postgres("awp-") as pg:
        pool = await create_pool(pg.uri(), min_size=1, max_size=4)
        async with pool.acquire() as conn:
            await migrate_schema(conn, "intake", migrations())
        trigram = await participation.has_trigram(pool)
        loaded = await load(pool, n, regions)
        print(f"{n:,} public reports loaded (COPY, vacuum, analyse) in {loaded:.0f} s;"
              f" similarity: {'pg_trgm' if trigram else 'full-text ranking'}")
        await measure(pool, 20, regions, trigram)  # warm the cache
        results = await measure(pool, samples, regions, trigram)
        print(f"{'statement':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for kind, values in results.items():
            print(f"{kind:<34} {pct(values, 50):8.1f} {pct(values, 99):8.1f}"
                  f" {max(values):8.1f}")
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.reports, args.samples))
