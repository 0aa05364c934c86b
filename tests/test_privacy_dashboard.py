"""Oversight's public surfaces (the dashboard, the statistics in JSON and CSV, the
audit checkpoints) show a private report only inside aggregate counts: never its
tracking code, its text, its address or anything about its reporter.

The complaint travels the real way: intake's API, the broker, the router, oversight,
all three services built by their own factories on one database and one broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from awasi.settings import Settings
from tests.support.services import running_service

DESCRIPTION = "Petugas loket Disdukcapil meminta uang Rp150.000 untuk mempercepat KTP saya."
ADDRESS = "Jl. Sisingamangaraja 77, Medan"
REPORTER = {"name": "Butet Siregar", "phone": "+6281377788899",
            "email": "butet.siregar@example.id"}


async def eventually(probe: Any, what: str, within: float = 60.0) -> Any:
    """Poll ``probe`` until it answers something truthy (hang guard ``within`` s)."""
    deadline = asyncio.get_running_loop().time() + within
    while not (value := await probe()):
        assert asyncio.get_running_loop().time() < deadline, f"no {what}"
        await asyncio.sleep(0.1)
    return value


async def test_a_private_report_is_only_a_count_on_oversight_public_pages(
        settings: Settings) -> None:
    async with running_service("intake", settings) as intake, \
            running_service("router", settings), \
            running_service("oversight", settings) as oversight:
        before = await (await oversight.get("/api/v1/stats/agencies")).json()
        r = await intake.post("/api/v1/complaints", json={
            "region": "MDN", "category": "asn-pungli", "privacy": "named",
            "title": "Pungli di loket KTP", "description": DESCRIPTION,
            "location": {"lat": 3.58, "lon": 98.67, "address": ADDRESS},
            "reporter": REPORTER})
        body = await r.json()
        assert r.status == 201, body
        assert body["visibility"] == "private"  # the default
        code = body["tracking_code"]

        # Oversight has the case (its own schema; only events crossed over).
        async def case_in_oversight() -> bool:
            conn = await asyncpg.connect(settings.database_url)
            try:
                return bool(await conn.fetchval(
                    "SELECT count(*) FROM oversight.cases WHERE tracking_code = $1", code))
            finally:
                await conn.close()

        await eventually(case_in_oversight, "case at oversight")

        # ... and the public statistics count it, once the snapshot is refreshed.
        def total(stats: dict[str, Any]) -> int:
            return sum(a["received"] for a in stats["agencies"])

        async def counted() -> dict[str, Any] | None:
            stats = await (await oversight.get("/api/v1/stats/agencies")).json()
            return stats if total(stats) == total(before) + 1 else None

        await eventually(counted, "the complaint in the public counts")

        # A checkpoint signed now covers the case's entries.
        conn = await asyncpg.connect(settings.database_url)
        try:
            # A checkpoint's seq is the number of entries it covers (row ids may skip).
            head = await conn.fetchval("SELECT count(*) FROM oversight.timeline")
            await conn.execute("UPDATE oversight.jobs SET next_at = now() "
                               "WHERE name = 'audit_checkpoint'")
        finally:
            await conn.close()

        async def checkpoint_after_case() -> bool:
            r = await oversight.get("/api/v1/audit/checkpoint")
            return r.status == 200 and (await r.json())["seq"] >= head

        await eventually(checkpoint_after_case, "a checkpoint covering the case")

        pages = {}
        for path in ("/", "/?lang=en", "/api/v1/stats/agencies",
                     "/api/v1/stats/agencies.csv", "/api/v1/audit/checkpoint",
                     "/api/v1/audit/checkpoints", "/api/v1/audit/verify"):
            r = await oversight.get(path)
            assert r.status == 200, (path, r.status)
            pages[path] = await r.text()
        everything = "\n".join(pages.values())
        for needle in (code, DESCRIPTION, "Rp150.000", "Pungli di loket KTP",
                       "Sisingamangaraja", *REPORTER.values(), "Butet", "Siregar"):
            assert needle not in everything, needle
        # Not vacuous: the pages did render the agency that has the case.
        (agency,) = [a["agency"] for a in (await counted() or {"agencies": []})["agencies"]
                     if a["received"] > 0]
        assert agency in pages["/api/v1/stats/agencies"] and agency in pages["/"]
