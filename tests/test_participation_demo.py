"""The demo seed makes a share of its road, waste and street-light complaints public,
with pins and supports, so ``/reports`` shows something in ``awasi dev``; seeding
twice changes nothing."""

from __future__ import annotations

import asyncpg

from awasi import demo
from awasi.settings import Settings


async def test_demo_seed_has_public_located_supported_reports(settings: Settings) -> None:
    # Without the six months of history (tests/test_demo.py covers that), so the
    # counts below are the hand-written demo's alone.
    await demo.seed(settings, history=False)
    await demo.seed(settings, history=False)  # idempotent
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT region, category, lat, lon, support_count FROM intake.complaints"
            " WHERE visibility = 'public'")
        private = await conn.fetchval(
            "SELECT count(*) FROM intake.complaints WHERE visibility = 'private'")
        supports = await conn.fetchval("SELECT count(*) FROM intake.supports")
    finally:
        await conn.close()
    assert len(rows) == len(demo.DEMO_PUBLIC) and private == len(demo.DEMO_COMPLAINTS)
    assert {r["region"] for r in rows} == {"MDN", "PLJ", "SWL", "PKY", "SRG"}
    assert {r["category"] for r in rows} <= {"jalan-rusak", "sampah", "lampu-jalan",
                                              "drainase"}
    assert all(r["lat"] is not None and r["lon"] is not None for r in rows)
    assert supports == sum(s for *_, s in demo.DEMO_PUBLIC) == sum(
        r["support_count"] for r in rows)
