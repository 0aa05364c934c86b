"""Router commands, and the demo staff that ``awasi seed demo`` creates."""

from __future__ import annotations

from typing import Any

import asyncpg

from awasi.catalog import Catalog
from awasi.identity import add_user

DEMO_PASSWORD = "awasi-demo-2026"


def register(subparsers: Any) -> None:
    """The router adds no subcommands of its own (``awasi users add`` is identity's)."""


def _username(agency_code: str, suffix: str = "") -> str:
    # MDN-INSPEKTORAT -> mdn.inspektorat
    parts = agency_code.lower().split("-", 1)
    base = ".".join(parts) if len(parts) == 2 else parts[0]
    return f"{base}{suffix}"


async def seed_demo_staff(pool: asyncpg.Pool,
                          catalog: Catalog) -> list[tuple[str, str, str, str | None]]:
    """Create the demo's people (idempotent: existing usernames are left as they are):
    for each region's first three agencies a staff member (``mdn.inspektorat``) and,
    for the first, a head (``mdn.inspektorat.head``); a triage officer per region
    (``triage.mdn``); two panel members ``panel.demo`` and ``panel.demo2``; an admin ``admin.demo``.
    All share the printed demo password. Returns (username, password, role, agency)."""
    people: list[tuple[str, str, str | None, str | None, str]] = []
    for region in catalog.regions.values():
        agencies = catalog.agencies_in(region.code)
        # Inspektorat first where a region has one: the ASN-conduct demo goes there.
        agencies.sort(key=lambda a: "INSPEKTORAT" not in a.code)
        for i, agency in enumerate(agencies[:3]):
            people.append((_username(agency.code), "staff", agency.code, region.code,
                           f"Petugas {agency.short_name}"))
            if i == 0:
                people.append((_username(agency.code, ".head"), "head", agency.code,
                               region.code, f"Kepala {agency.short_name}"))
        people.append((f"triage.{region.code.lower()}", "triage", None, region.code,
                       f"Admin Pemda {region.name}"))
    people.append(("panel.demo", "panel", None, None, "Tim Pengawas (demo)"))
    # A second member: findings need one to draft and another to confirm.
    people.append(("panel.demo2", "panel", None, None, "Tim Pengawas 2 (demo)"))
    people.append(("admin.demo", "admin", None, None, "Admin (demo)"))
    result = []
    for username, role, agency, region, name in people:
        await add_user(pool, username=username, password=DEMO_PASSWORD, role=role,
                       agency=agency, region=region if role == "triage" else None,
                       display_name=name, exist_ok=True)
        result.append((username, DEMO_PASSWORD, role, agency))
    return result
