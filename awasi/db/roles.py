"""Database roles: one login role per service, granted only its own schemas, and an
owner role that owns every schema and runs the migrations.

This module is the one place the grants live. ``awasi db roles`` applies it (the
Compose one-shot ``db-roles``, the Kubernetes migrate Job's init container, and the
tests all call ``apply_roles``); nothing is copied into SQL files by hand.

What it does, in one transaction, idempotently (run it again to converge or to
rotate passwords):

- creates each role with LOGIN (or, if it exists, sets LOGIN and the new password);
  passwords are sent as SCRAM-SHA-256 verifiers computed here, so the plain password
  never reaches the server (nor its statement log);
- makes the owner role own every schema and every table, sequence, function and type
  in it (an existing single-user installation is adopted this way);
- grants each service role USAGE on its schemas and SELECT, INSERT, UPDATE, DELETE on
  their tables (USAGE, SELECT on sequences), now and, through ``ALTER DEFAULT
  PRIVILEGES FOR ROLE <owner>``, on everything later migrations create; and revokes
  everything on the schemas it must not use;
- grants the owner CREATE on the database (new schemas, trusted extensions).

The admin connection (``AWASI_DATABASE_URL`` of the command) must be a superuser, or
a role with CREATEROLE that is a member of the roles it manages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import asyncpg

from awasi.settings import SettingsError

# Which schemas each service's role may use: its own, and the staff identity schema
# for the two services that sign staff in through ``awasi.identity``. Intake keeps the
# reporters' contacts and needs nothing else. ``tests/test_security_roles.py`` proves
# each role can do its work with exactly these, and is refused everything else.
SERVICE_SCHEMAS: dict[str, tuple[str, ...]] = {
    "intake": ("intake",),
    "router": ("router", "identity"),
    "oversight": ("oversight", "identity"),
}
# Every schema the platform owns (the migration order of ``awasi.cli``).
SCHEMAS: tuple[str, ...] = ("identity", "intake", "router", "oversight")

# Role names the deployment files use; the command takes the name from each DSN, so
# two cities can share one PostgreSQL cluster with their own roles.
DEFAULT_ROLES = {"owner": "awasi_owner", "intake": "awasi_intake",
                 "router": "awasi_router", "oversight": "awasi_oversight"}
# The command reads each role's name and password from the DSN the role's users get.
VARIABLES = {"owner": "AWASI_DB_OWNER_URL", "intake": "AWASI_DB_INTAKE_URL",
             "router": "AWASI_DB_ROUTER_URL", "oversight": "AWASI_DB_OVERSIGHT_URL"}

TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT"
SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# What the templates' placeholder passwords contain (deploy/env.example,
# deploy/k8s/secret.example.yaml; a test keeps them in step): refused, so a copied
# template cannot become the real password.
PLACEHOLDER_MARKERS = ("change-me", "REPLACE")


class RoleError(RuntimeError):
    """A role named by a DSN cannot be used as a service or owner role."""


@dataclass(frozen=True, slots=True)
class Login:
    role: str
    password: str | None  # None: leave the role's password as it is


@dataclass(frozen=True, slots=True)
class RoleLogins:
    """The owner's and each service's role, as read from their DSNs."""

    owner: Login
    services: dict[str, Login]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RoleLogins:
        """Read the four DSNs named in ``VARIABLES``; raises
        ``SettingsError`` naming the variable that is missing or malformed."""
        logins = {who: login_from_dsn(var, env.get(var, "")) for who, var in VARIABLES.items()}
        names = [login.role for login in logins.values()]
        if len(set(names)) != len(names):
            raise SettingsError(f"{', '.join(VARIABLES.values())} must name four different "
                                f"users, got {names}")
        return cls(owner=logins.pop("owner"), services=logins)


def login_from_dsn(variable: str, dsn: str) -> Login:
    if not dsn:
        raise SettingsError(f"{variable} is not set (the DSN its role logs in with)")
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not parts.username:
        raise SettingsError(f"{variable} must be postgresql://ROLE:PASSWORD@host/db")
    role = unquote(parts.username)
    if not _NAME.match(role):
        raise SettingsError(f"{variable}: role name {role!r} must be lower case letters, "
                            "digits and _")
    password = unquote(parts.password) if parts.password else None
    if password is not None and any(m in password for m in PLACEHOLDER_MARKERS):
        raise SettingsError(f"{variable}: the password is still the template's placeholder")
    if password is not None and not password.isascii():
        # PostgreSQL normalizes non-ASCII passwords (SASLprep) before hashing them;
        # ASCII only keeps the verifier computed here identical to the server's.
        raise SettingsError(f"{variable}: use an ASCII password (hex is ideal)")
    return Login(role, password)


def scram_verifier(password: str, *, salt: bytes | None = None,
                   iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677,
    PostgreSQL's ``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`` form). Given
    to ``CREATE/ALTER ROLE ... PASSWORD``, it is stored as is."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _ensure_role(conn: asyncpg.Connection, login: Login) -> str:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", login.role)
    password = (f" PASSWORD {_literal(scram_verifier(login.password))}"
                if login.password is not None else "")
    if exists:
        # Only LOGIN and the password: changing SUPERUSER and the like needs a
        # superuser, and a role made here never had them.
        await conn.execute(f"ALTER ROLE {ident(login.role)} WITH LOGIN{password}")
        return f"role {login.role}: exists" + (", password set" if password else "")
    await conn.execute(
        f"CREATE ROLE {ident(login.role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
        f" NOREPLICATION NOBYPASSRLS{password}")
    return f"role {login.role}: created" + (", password set" if password else "")


async def _adopt(conn: asyncpg.Connection, schema: str, owner: str) -> int:
    """Make ``owner`` own the schema and what is in it; return how many objects moved.
    (Sequences that belong to a column move with their table.)"""
    moved = 0
    found = await conn.fetchrow(
        "SELECT n.oid, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner"
        " WHERE n.nspname = $1", schema)
    if found is None:
        await conn.execute(f"CREATE SCHEMA {ident(schema)} AUTHORIZATION {ident(owner)}")
        return 0
    if found["rolname"] != owner:
        await conn.execute(f"ALTER SCHEMA {ident(schema)} OWNER TO {ident(owner)}")
        moved += 1
    nsp = found["oid"]
    # Objects that belong to an extension (pg_trgm's functions, say) keep their owner:
    # the extension manages them.
    objects = await conn.fetch(
        "WITH members AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')"
        # Tables, views, materialized views, foreign tables.
        " SELECT 'TABLE' AS kind, c.oid::regclass::text AS name FROM pg_class c"
        " WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " AND c.relowner <> to_regrole($2)"
        " AND (c.tableoid, c.oid) NOT IN (SELECT * FROM members)"
        # Sequences that no column owns (those move with their table).
        " UNION ALL SELECT 'SEQUENCE', c.oid::regclass::text FROM pg_class c"
        " WHERE c.relnamespace = $1 AND c.relkind = 'S' AND c.relowner <> to_regrole($2)"
        " AND (c.tableoid, c.oid) NOT IN (SELECT * FROM members)"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        "   AND d.objid = c.oid AND d.deptype IN ('a', 'i'))"
        " UNION ALL SELECT 'ROUTINE', p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.pronamespace = $1 AND p.proowner <> to_regrole($2)"
        " AND (p.tableoid, p.oid) NOT IN (SELECT * FROM members)"
        # Enums, domains, ranges and stand-alone composite types (not a table's row type).
        " UNION ALL SELECT 'TYPE', t.oid::regtype::text FROM pg_type t"
        " LEFT JOIN pg_class c ON c.oid = t.typrelid"
        " WHERE t.typnamespace = $1 AND t.typowner <> to_regrole($2)"
        " AND (t.tableoid, t.oid) NOT IN (SELECT * FROM members)"
        " AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))",
        nsp, owner)
    for row in objects:
        await conn.execute(f"ALTER {row['kind']} {row['name']} OWNER TO {ident(owner)}")
        moved += 1
    return moved


async def _grant(conn: asyncpg.Connection, schema: str, owner: str, role: str) -> None:
    s, o, r = ident(schema), ident(owner), ident(role)
    await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    # Tables and sequences the owner creates later (the next migrations) too.
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s}"
                       f" GRANT {TABLE_PRIVILEGES} ON TABLES TO {r}")
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s}"
                       f" GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {r}")


async def _revoke(conn: asyncpg.Connection, schema: str, owner: str, role: str) -> None:
    s, o, r = ident(schema), ident(owner), ident(role)
    await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}")
    await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {s} FROM {r}")
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s}"
                       f" REVOKE ALL ON TABLES FROM {r}")
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s}"
                       f" REVOKE ALL ON SEQUENCES FROM {r}")


async def apply_roles(conn: asyncpg.Connection, logins: RoleLogins) -> list[str]:
    """Create or update the roles and their grants in the connected database, in one
    transaction. Returns what was done, one line each (never a password)."""
    done: list[str] = []
    owner = logins.owner.role
    database = ident(await conn.fetchval("SELECT current_database()"))
    async with conn.transaction():
        # A role that already existed as something stronger (a DSN naming the admin
        # by mistake) would make the separation meaningless: refuse it.
        strong = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname = any($1::text[])"
            " AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication)",
            [login.role for login in (logins.owner, *logins.services.values())])
        if strong:
            raise RoleError(
                f"role {strong[0]['rolname']} is a superuser or may create roles or databases, "
                "bypass row security or replicate: give the owner and each service a role "
                "of its own in its DSN, not an admin")
        for login in (logins.owner, *logins.services.values()):
            done.append(await _ensure_role(conn, login))
            await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {ident(login.role)}")
        await conn.execute(f"GRANT CREATE, TEMPORARY ON DATABASE {database} TO {ident(owner)}")
        # PostgreSQL 15 and later already refuse this; older servers let every role
        # create tables in `public`, outside the grants below.
        if await conn.fetchval("SELECT to_regnamespace('public') IS NOT NULL"):
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for schema in SCHEMAS:
            moved = await _adopt(conn, schema, owner)
            await conn.execute(f"REVOKE ALL ON SCHEMA {ident(schema)} FROM PUBLIC")
            done.append(f"schema {schema}: owned by {owner}"
                        + (f" ({moved} objects handed over)" if moved else ""))
            for service, login in logins.services.items():
                if schema in SERVICE_SCHEMAS[service]:
                    await _grant(conn, schema, owner, login.role)
                    done.append(f"schema {schema}: {TABLE_PRIVILEGES} to {login.role}")
                else:
                    await _revoke(conn, schema, owner, login.role)
    return done
