"""``awasi seed demo``: the demo's people, a few complaints and six months of history
(``awasi.demo_history``), idempotently.

The catalog (the five cities, their agencies, categories and rules) is the demo
catalog file itself; people live in the database, so they are created here. A
handful of complaints are submitted through intake's own domain function, exactly as
the web form would, so they flow through the outbox to the router like any other.

The demo people share one published password, so the data must never reach a real
deployment: ``awasi dev`` loads it by calling ``seed`` itself, and the ``awasi seed
demo`` command refuses to run unless given ``--force`` (for a staging copy).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from awasi.settings import Settings

DEMO_COMPLAINTS = [
    ("MDN", "asn-pungli", "named",
     "Petugas kelurahan meminta uang Rp 200.000 untuk mempercepat pengurusan surat "
     "keterangan domisili. Tidak ada kuitansi resmi.", "Siti Rahmawati"),
    ("MDN", "jalan-rusak", "anonymous",
     "Jalan berlubang besar di Jl. Gatot Subroto dekat simpang Sei Sikambing, sudah dua "
     "bulan belum diperbaiki dan membahayakan pengendara motor.", None),
    ("SRG", "asn-absen", "confidential",
     "Pegawai puskesmas sering tidak hadir pada jam pelayanan pagi, antrean pasien "
     "menumpuk sampai siang.", "Yohanes Kambu"),
    ("PKY", "sampah", "named",
     "Sampah tidak diangkut selama seminggu di TPS Jl. Tjilik Riwut km 2, bau menyengat "
     "dan mengundang lalat.", "Dewi Lestari"),
    ("SWL", "lainnya", "anonymous",
     "Lampu lalu lintas di persimpangan dekat pasar mati sejak tiga hari, mohon segera "
     "ditangani.", None),
]


async def seed(settings: Settings, *, history: bool = True
               ) -> list[tuple[str, str, str, str | None]]:
    """The demo's people and complaints; with ``history`` also six months of worked
    complaints (``awasi.demo_history``). Idempotent: a second run adds nothing."""
    from awasi.catalog import load_catalog
    from awasi.cli import migrate_all
    from awasi.db import create_pool
    from services.intake.domain import ReporterIn, SubmitCommand, submit_complaint
    from services.router.cli import seed_demo_staff

    dsn = settings.require_database()
    await migrate_all(dsn)
    catalog = load_catalog(settings.catalog)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        people = await seed_demo_staff(pool, catalog)
        for i, (region, category, privacy, text, name) in enumerate(DEMO_COMPLAINTS):
            if region not in catalog.regions or category not in {
                c.code for c in catalog.categories_for(region)
            }:
                continue
            reporter = ReporterIn(name=name) if name else None
            # The idempotency key makes a second `awasi seed demo` a no-op.
            await submit_complaint(pool, catalog, settings, SubmitCommand(
                region=region, category=category, description=text, privacy=privacy,
                channel="web", reporter=reporter, idempotency_key=f"awasi-demo-{i}",
                request_hash=b"demo",
            ))
        if history:
            from awasi import demo_history

            async with pool.acquire() as conn:
                await demo_history.load(settings, catalog, conn)
        return people
    finally:
        await pool.close()


REFUSAL = (
    "awasi seed demo: refused. The demo data creates staff accounts (admin, panel, "
    "agency heads) that all share a password published in the source code, and fake "
    "complaints. `awasi dev` loads it by itself. To load it into this database anyway "
    "(a throwaway staging copy, never production), run `awasi seed demo --force`."
)


def print_people(people: list[tuple[str, str, str, str | None]]) -> None:
    print("demo staff (password for all: %s):" % (people[0][1] if people else "-"))
    for username, _, role, agency in people:
        print(f"  {username:<28} {role:<7} {agency or ''}")


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    # Refused before any connection is made: nothing is written without --force.
    if not args.force:
        print(REFUSAL, file=sys.stderr)
        return 2
    print_people(asyncio.run(seed(settings)))
    return 0


def register(subparsers: Any) -> None:
    seed_parser = subparsers.add_parser("seed", help="load data")
    seed_parser.add_argument("what", choices=["demo"], help="demo: demo staff and complaints")
    seed_parser.add_argument(
        "--force", action="store_true",
        help="load the demo data outside `awasi dev` (its staff share a public password)")
    seed_parser.set_defaults(func=cmd_seed)
