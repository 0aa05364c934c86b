"""Versioned SQL migrations, one folder per schema, applied under an advisory lock.

Why a small runner and not Alembic or yoyo: both drive the database through a
synchronous driver (SQLAlchemy / psycopg) that the services otherwise do not need,
and our migrations are plain SQL per schema. The runner is the usual one: files
``NNNN_name.sql`` applied in order, each in its own transaction together with its row
in ``<schema>.schema_migrations``, all under ``pg_advisory_lock`` so that several
processes starting at once apply each migration exactly once. A file whose checksum
changed after it was applied is refused.

Who applies them: ``awasi migrate``, run as the owner role (``awasi.db.roles``), and
every service at start. A service that runs as its own role (``awasi_intake``, ...)
owns nothing and cannot create or alter tables: at start it only checks that its
schemas are up to date (the migrations it knows are applied, with the same checksums)
and, if some are pending, refuses to start with a message saying to run ``awasi
migrate``. A service that connects as the owner (``awasi dev``, the tests, a
single-role installation) applies pending migrations itself, as before.
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


async def _applied(conn: asyncpg.Connection, schema: str) -> dict[int, str]:
    """Version -> checksum of what is applied; empty when nothing ever was."""
    table = f'"{schema}".schema_migrations'
    try:
        if await conn.fetchval("SELECT to_regclass($1)", table) is None:
            return {}
        rows = await conn.fetch(f"SELECT version, checksum FROM {table}")
    except asyncpg.InsufficientPrivilegeError as e:
        user = await conn.fetchval("SELECT current_user")
        raise MigrationError(
            f"role {user} may not read schema {schema}: run `awasi migrate` as the owner "
            "role (each service's role sees only its own schemas)"
        ) from e
    return {r["version"]: r["checksum"] for r in rows}


async def may_migrate(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether the connected role can change ``schema``: it owns the schema (or is a
    member of its owner, or a superuser), or the schema does not exist yet and the
    role may create schemas in this database."""
    return bool(await conn.fetchval(
        "SELECT CASE WHEN n.oid IS NULL"
        " THEN has_database_privilege(current_database(), 'CREATE')"
        " ELSE pg_has_role(n.nspowner, 'USAGE') END"
        " FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $1", schema))


async def migrate_schema(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    """Apply pending migrations to ``schema``; return the names applied now.

    Raises ``MigrationError`` if an applied migration changed, or if some are pending
    and the connected role may not apply them (a service running as its own role:
    ``awasi migrate`` has to run first, as the owner)."""
    applied_now: list[str] = []
    key = _lock_key(schema)
    # Session-level lock: held across the per-migration transactions below, so a
    # second process waits here and then finds everything already applied.
    async with session_advisory_lock(conn, key):
        done = await _applied(conn, schema)
        for m in migrations:
            if m.version in done and done[m.version] != m.checksum:
                raise MigrationError(
                    f"{schema}/{m.name} changed after it was applied; add a new migration"
                )
        pending = [m for m in migrations if m.version not in done]
        if not pending:
            # Nothing to create: a role that owns nothing passes here.
            return applied_now
        if not await may_migrate(conn, schema):
            user = await conn.fetchval("SELECT current_user")
            raise MigrationError(
                f"schema {schema} has {len(pending)} pending migration(s) (first: "
                f"{pending[0].name}) and role {user} may not apply them: run "
                "`awasi migrate` as the owner role first (deploy/RUNBOOK.md, \"Upgrade\")"
            )
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in pending:
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
