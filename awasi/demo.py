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
        await seed_surveys(pool, catalog, settings)
        await seed_public(pool, catalog, settings)
        if history:
            from awasi import demo_history

            async with pool.acquire() as conn:
                await demo_history.load(settings, catalog, conn)
        return people
    finally:
        await pool.close()


# --- satisfaction survey answers (docs/EVALUATION.md) -------------------------------

# A service quality per demo unit (the mean answer it tends to get), so the demo's
# index shows a spread of grades; units not listed here get no demo answers.
SURVEY_QUALITY = {
    "MDN-DISDUKCAPIL-LOKET": 2.9, "MDN-DISDUKCAPIL-MPP": 3.5, "MDN-PKM-PADANGBULAN": 3.1,
    "MDN-PKM-SUNGGAL": 2.6, "MDN-SDN-060843": 3.3, "PLJ-KEL-PLAJUULU": 3.0,
    "PLJ-KEL-TALANGBUBUK": 2.7, "PLJ-PKM-PLAJU": 3.2, "PLJ-DISDUKCAPIL-LOKET": 3.0,
    "SWL-PKM-SILUNGKANG": 3.4, "SWL-DISDUKCAPIL-LOKET": 3.1, "PKY-PKM-KAYON": 2.8,
    "PKY-DISDUKCAPIL-LOKET": 3.0, "SRG-PKM-REMU": 2.5, "SRG-DISDUKCAPIL-LOKET": 2.9,
}
# Elements that run above or below a unit's level: fees are mostly free (U4), waiting
# time (U3) and complaint handling (U8) are where people are least satisfied.
SURVEY_TILT = {"U3": -0.4, "U4": +0.6, "U8": -0.3, "U7": +0.1}


async def seed_surveys(pool: Any, catalog: Any, settings: Settings,
                       now: Any = None) -> int:
    """A few hundred survey answers over the demo units in the two quarters before
    the current one, stored through intake's own survey function (so they reach
    oversight through the outbox like any answer). Idempotent: nothing is added when
    the first demo answer exists already. Returns the number added."""
    import random
    from datetime import UTC, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from awasi.ikm import ELEMENTS
    from awasi.periods import current_quarter
    from services.intake.survey import (
        AnswersIn,
        RespondentIn,
        SurveyIn,
        respondent_key,
        store_response,
    )

    now = now or datetime.now(UTC)
    first_key = respondent_key(settings, "demo", "0")
    if await pool.fetchval("SELECT 1 FROM intake.survey_responses WHERE respondent_key = $1",
                           first_key):
        return 0
    rng = random.Random(20171)  # fixed: the same demo every time
    added = 0
    for code, level in SURVEY_QUALITY.items():
        if code not in catalog.units:
            continue
        unit = catalog.units[code]
        zone = catalog.regions[catalog.agencies[unit.agency].region].timezone
        quarter = current_quarter(now, zone)
        for period in (quarter.previous().previous(), quarter.previous()):
            # A unit improves a little from one quarter to the next.
            mean = level + (0.15 if period == quarter.previous() else 0.0)
            span = (period.last_day - period.first_day).days
            for _ in range(rng.randint(8, 16)):
                day = period.first_day + timedelta(days=rng.randint(0, span))
                at = datetime.combine(day, time(rng.randint(8, 14), rng.randint(0, 59)),
                                      tzinfo=ZoneInfo(zone))
                answers = {e: max(1, min(4, round(rng.gauss(mean + SURVEY_TILT.get(e, 0),
                                                             0.6))))
                           for e in ELEMENTS}
                body = SurveyIn(answers=AnswersIn(**answers), respondent=RespondentIn(
                    sex=rng.choice(["L", "P", None]),
                    age_group=rng.choice(["20-29", "30-39", "40-49", "50-59", None])))
                key = respondent_key(settings, "demo", str(added))
                await store_response(pool, catalog, unit, body, key, "web", now=at)
                added += 1
    return added


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
