"""SQL for the intake schema. Functions take a connection so the caller decides the
transaction; nothing here commits on its own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

COMPLAINT_COLUMNS = (
    "id, tracking_code, region, category, title, description, lat, lon, address, privacy,"
    " channel, reporter_ref, secret_hash, status, submitted_at, updated_at, media_url,"
    " visibility"
)


COMPLAINT_TYPES = (
    "uuid[], text[], text[], text[], text[], text[], float8[], float8[], text[], text[],"
    " text[], text[], bytea[], text[], timestamptz[], timestamptz[], text[], text[]"
)


def _unnest(types: str, first: int = 1) -> str:
    """``SELECT * FROM unnest($1::t1, $2::t2, ...)`` for a comma-separated type list,
    numbering the parameters from ``first``."""
    casts = ", ".join(f"${i}::{t.strip()}" for i, t in enumerate(types.split(","), first))
    return f"SELECT * FROM unnest({casts})"


# Rows go in as one array per column, so a group commit of up to 128 complaints is
# one statement rather than one execution per row and table.
INSERT_SUBMISSIONS = (
    f"WITH c AS (INSERT INTO intake.complaints ({COMPLAINT_COLUMNS}) {_unnest(COMPLAINT_TYPES)}"
    "  RETURNING id, submitted_at, channel),"
    " r AS (INSERT INTO intake.reporters (complaint_id, name, phone, email, locale)"
    f"  {_unnest('uuid[], text[], text[], text[], text[]', 19)})"
    " INSERT INTO intake.timeline (complaint_id, at, kind, data)"
    " SELECT id, submitted_at, 'submitted', jsonb_build_object('channel', channel) FROM c"
)


async def insert_submissions(conn: asyncpg.Connection, complaints: Sequence[tuple[Any, ...]],
                             reporters: Sequence[tuple[Any, ...]]) -> None:
    """Insert new complaints (tuples in ``COMPLAINT_COLUMNS`` order), their reporters'
    contacts (``(complaint_id, name, phone, email, locale)``, none for anonymous
    reports) and
    the ``submitted`` entry of each timeline."""
    if complaints:
        await conn.execute(INSERT_SUBMISSIONS, *_columns(complaints, 18),
                           *_columns(reporters, 5))


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[Sequence[Any]]:
    return list(zip(*rows, strict=True)) if rows else [[] for _ in range(width)]


async def insert_photos(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]], *,
                        at_filing: bool = False) -> None:
    """Insert ``(id, complaint_id, content_type, data)`` rows; ``at_filing``: sent with
    the report itself (only those may show on a public report's page)."""
    if rows:
        await conn.execute(
            "INSERT INTO intake.photos (id, complaint_id, content_type, data, at_filing)"
            " SELECT *, $5::boolean FROM unnest($1::uuid[], $2::uuid[], $3::text[],"
            " $4::bytea[])", *zip(*rows, strict=True), at_filing)


async def add_timeline(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``(complaint_id, at, kind, data)`` timeline rows, in order."""
    if rows:
        await conn.execute("INSERT INTO intake.timeline (complaint_id, at, kind, data) "
                           + _unnest("uuid[], timestamptz[], text[], jsonb[]"),
                           *zip(*rows, strict=True))


async def complaint_by_code(
    conn: asyncpg.Connection | asyncpg.Pool, code: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM intake.complaints WHERE tracking_code = $1{lock}", code)


async def complaint_by_id(
    conn: asyncpg.Connection | asyncpg.Pool, complaint_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT * FROM intake.complaints WHERE id = $1{lock}",
                               complaint_id)


async def timeline(conn: asyncpg.Connection | asyncpg.Pool,
                   complaint_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(await conn.fetch(
        "SELECT at, kind, data FROM intake.timeline WHERE complaint_id = $1 ORDER BY at, id",
        complaint_id))


async def update_complaint(conn: asyncpg.Connection, complaint_id: uuid.UUID,
                           now: datetime, **changes: Any) -> None:
    """Set columns (names are ours, never user input) and ``updated_at``."""
    names = list(changes)
    sets = ", ".join(f"{n} = ${i + 3}" for i, n in enumerate(names))
    await conn.execute(
        f"UPDATE intake.complaints SET updated_at = $2{', ' if sets else ''}{sets} WHERE id = $1",
        complaint_id, now, *(changes[n] for n in names))


async def reporter(conn: asyncpg.Connection | asyncpg.Pool,
                   complaint_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT r.name, r.phone, r.email, c.privacy FROM intake.complaints c"
        " JOIN intake.reporters r ON r.complaint_id = c.id WHERE c.id = $1", complaint_id)


async def photo_ids(conn: asyncpg.Connection | asyncpg.Pool,
                    complaint_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["id"] for r in await conn.fetch(
        "SELECT id FROM intake.photos WHERE complaint_id = $1 ORDER BY created_at, id",
        complaint_id)]
