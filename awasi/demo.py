"""``awasi seed demo``: the demo's people and a few complaints, idempotently.

The catalog (the five cities, their agencies, categories and rules) is the demo
catalog file itself; people live in the database, so they are created here. A
handful of complaints are submitted through intake's own domain function, exactly as
the web form would, so they flow through the outbox to the router like any other.
"""

from __future__ import annotations

import argparse
import asyncio
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

# Public reports (road, waste, street lights: what neighbours share) with a pin and a
# few supports, so the public list and map show something in `awasi dev`. Reporters
# are anonymous or confidential: a public report never shows who wrote it anyway.
# (region, category, privacy, text, (lat, lon, address), supports)
DEMO_PUBLIC = [
    ("MDN", "jalan-rusak", "anonymous",
     "Aspal Jl. Sisingamangaraja dekat Stadion Teladan mengelupas dan berlubang, "
     "genangan air setiap hujan.", (3.5650, 98.6950, "Jl. Sisingamangaraja, Medan Kota"), 4),
    ("MDN", "sampah", "confidential",
     "Tumpukan sampah di samping Pasar Petisah tidak diangkut tiga hari, menutup "
     "sebagian badan jalan.", (3.5907, 98.6660, "Pasar Petisah, Medan Petisah"), 2),
    ("MDN", "lampu-jalan", "anonymous",
     "Lampu penerangan jalan di Jl. Gatot Subroto depan sekolah mati semua, gelap "
     "dan rawan begal malam hari.", (3.5905, 98.6485, "Jl. Gatot Subroto, Medan Sunggal"), 6),
    ("PLJ", "drainase", "anonymous",
     "Saluran air di Jl. Kapten Abdullah tersumbat sampah, air meluap ke rumah warga "
     "setiap hujan deras.", (-2.9980, 104.8050, "Jl. Kapten Abdullah, Plaju"), 1),
    ("SWL", "jalan-rusak", "anonymous",
     "Jalan menuju Desa Kubang longsor sebagian, hanya bisa dilalui satu kendaraan.",
     (-0.6800, 100.7780, "Jalan ke Desa Kubang, Lembah Segar"), 3),
    ("PKY", "lampu-jalan", "confidential",
     "Lampu jalan di Jl. Tjilik Riwut km 2 padam sepanjang 500 meter sejak dua minggu.",
     (-2.1950, 113.9000, "Jl. Tjilik Riwut km 2"), 0),
    ("SRG", "sampah", "anonymous",
     "Sampah menumpuk di pinggir Jl. Basuki Rahmat Remu, dibakar warga dan asapnya "
     "mengganggu.", (-0.8762, 131.2558, "Jl. Basuki Rahmat, Remu"), 2),
]


async def seed(settings: Settings) -> list[tuple[str, str, str, str | None]]:
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
        await seed_public(pool, catalog, settings)
        return people
    finally:
        await pool.close()


async def seed_public(pool: Any, catalog: Any, settings: Settings) -> None:
    """``DEMO_PUBLIC``: public, located, with their supports (idempotent: the same
    Idempotency-Key and the same demo supporters count nothing twice)."""
    from awasi.events.payloads import Location
    from services.intake import participation
    from services.intake.domain import SubmitCommand, submit_complaint

    for i, (region, category, privacy, text, (lat, lon, address), supports) in enumerate(
            DEMO_PUBLIC):
        if region not in catalog.regions or category not in {
            c.code for c in catalog.categories_for(region)
        }:
            continue
        receipt = await submit_complaint(pool, catalog, settings, SubmitCommand(
            region=region, category=category, description=text, privacy=privacy,
            visibility="public", channel="web",
            location=Location(lat=lat, lon=lon, address=address),
            idempotency_key=f"awasi-demo-public-{i}", request_hash=b"demo"))
        for n in range(supports):
            key = participation.supporter_key(settings.secret_key, "device", f"demo-{i}-{n}")
            await participation.support(pool, receipt.tracking_code, key, "web")


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    people = asyncio.run(seed(settings))
    print("demo staff (password for all: %s):" % (people[0][1] if people else "-"))
    for username, _, role, agency in people:
        print(f"  {username:<28} {role:<7} {agency or ''}")
    return 0


def register(subparsers: Any) -> None:
    seed_parser = subparsers.add_parser("seed", help="load data")
    seed_parser.add_argument("what", choices=["demo"], help="demo: demo staff and complaints")
    seed_parser.set_defaults(func=cmd_seed)
