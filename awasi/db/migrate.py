"""Versioned SQL migrations, one folder per schema, applied under an advisory lock.

Why a small runner and not Alembic or yoyo: both drive the database through a
synchronous driver (SQLAlchemy / psycopg) that the services otherwise do not need,
and our migrations are plain SQL per schema. The runner is the usual one: files
``NNNN_name.sql`` applied in order, each in its own transaction together with its row
in ``<schema>.schema_migrations``, all under ``pg_advisory_lock`` so that several
processes starting at once apply each migration exactly once. A file whose checksum
changed after it was applied is refused.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

from awasi.db.locks import session_advisory_lock

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration is missing, malformed or was changed after it was applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    """Read ``NNNN_*.sql`` files from a package folder, ordered by version."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {package}")
    return found


def _lock_key(schema: str) -> int:
    # A stable 63-bit key per schema for pg_advisory_lock.
    return zlib.crc32(f"awasi.migrate.{schema}".encode())


async def migrate_schema(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    """Apply pending migrations to ``schema``; return the names applied now."""
    applied_now: list[str] = []
    key = _lock_key(schema)
    # Session-level lock: held across the per-migration transactions below, so a
    # second process waits here and then finds everything already applied.
    async with session_advisory_lock(conn, key):
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f'SELECT version, checksum FROM "{schema}".schema_migrations')
        done = {r["version"]: r["checksum"] for r in rows}
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"{schema}/{m.name} changed after it was applied; add a new migration"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                await conn.execute(m.sql)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, name, checksum)'
                    " VALUES ($1, $2, $3)",
                    m.version, m.name, m.checksum,
                )
            applied_now.append(f"{schema}/{m.name}")
    return applied_now
