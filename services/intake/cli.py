"""Intake commands: ``awasi photos scrub`` re-encodes photos stored before intake
removed their metadata."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from awasi.settings import Settings
from awasi.web.errors import ValidationFailed

# The two tables that hold photo bytes, and their key columns.
_TABLES = {"photos": ("id",), "telegram_draft_photos": ("chat_id", "draft_id", "seq")}


@dataclass
class ScrubReport:
    reencoded: int = 0
    unreadable: list[str] = field(default_factory=list)


async def scrub_photos(pool: asyncpg.Pool, batch: int = 50) -> ScrubReport:
    """Re-encode every stored photo not yet re-encoded (``reencoded = false``: stored
    before migration 0170), a batch at a time, each batch in one transaction; marks
    them done, so the command can be stopped and run again and never re-encodes a
    photo twice. A photo that does not decode is left as it is and reported (it
    cannot be shown either; deleting evidence is the operator's decision)."""
    from services.intake.photos import configure_pillow, reencode

    configure_pillow()
    report = ScrubReport()
    for table, key in _TABLES.items():
        cols = ", ".join(key)
        after = ", ".join(f"${i + 2}" for i in range(len(key)))
        where = " AND ".join(f"{k} = ${i + 3}" for i, k in enumerate(key))
        last: tuple[Any, ...] | None = None
        while True:
            # Keyset order: a photo left as it is (unreadable) is passed, not re-read.
            async with pool.acquire() as conn, conn.transaction():
                if last is None:
                    rows = await conn.fetch(
                        f"SELECT {cols}, data FROM intake.{table} WHERE NOT reencoded"
                        f" ORDER BY {cols} LIMIT $1 FOR UPDATE", batch)
                else:
                    rows = await conn.fetch(
                        f"SELECT {cols}, data FROM intake.{table} WHERE NOT reencoded"
                        f" AND ({cols}) > ({after}) ORDER BY {cols} LIMIT $1 FOR UPDATE",
                        batch, *last)
                if not rows:
                    break
                for row in rows:
                    last = tuple(row[k] for k in key)
                    try:
                        # Pillow's CPU work off the loop: the pool's connections stay served.
                        photo = await asyncio.to_thread(reencode, bytes(row["data"]), "data")
                    except ValidationFailed:
                        report.unreadable.append(f"{table}:{':'.join(map(str, last))}")
                        continue
                    await conn.execute(
                        f"UPDATE intake.{table} SET data = $1, content_type = $2,"
                        f" reencoded = true WHERE {where}", photo.data, photo.content_type,
                        *last)
                    report.reencoded += 1
    return report


async def _scrub(dsn: str) -> ScrubReport:
    from awasi.db.pool import create_pool

    pool = await create_pool(dsn)
    try:
        return await scrub_photos(pool)
    finally:
        await pool.close()


def cmd_photos_scrub(settings: Settings, args: argparse.Namespace) -> int:
    """Print what was done; exit 0, or 1 if some stored photo could not be read."""
    report = asyncio.run(_scrub(settings.require_database()))
    print(f"photos re-encoded without metadata: {report.reencoded}")
    for ident in report.unreadable:
        print(f"could not be read, left as it is: {ident}")
    return 1 if report.unreadable else 0


def register(subparsers: Any) -> None:
    photos = subparsers.add_parser("photos", help="stored photos")
    photos_sub = photos.add_subparsers(dest="photos_command", required=True)
    scrub = photos_sub.add_parser(
        "scrub", help="re-encode photos stored before intake removed their metadata "
                      "(EXIF, GPS, XMP); safe to stop and run again")
    scrub.set_defaults(func=cmd_photos_scrub)
