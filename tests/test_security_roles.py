"""One database role per service (awasi/db/roles.py), on the real embedded PostgreSQL.

The roles are made by the same code the deployment runs (``awasi db roles``), on a
fresh database, and the migrations are then applied as the owner role, exactly as the
Compose one-shots and the Kubernetes Job do. Then:

- every service role is refused every table of every schema it does not own, with
  PostgreSQL's permission error (router -> intake's reporters among them), and can
  read and write every table of its own schemas; none can change tables;
- tables that later migrations create are granted through the default privileges;
- a service role never applies migrations: it starts when its schemas are up to date
  and refuses, naming ``awasi migrate``, when one is pending;
- the three services, each connected as its own role, carry a complaint from intake
  through the router to oversight;
- an existing single-user database is adopted by the owner role;
- passwords: a role logs in with its password and not another, and re-running the
  command rotates it (a second embedded server that asks for SCRAM passwords).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from awasi import cli
from awasi.db import Migration, migrate_schema
from awasi.db.migrate import MigrationError
from awasi.db.roles import (
    DEFAULT_ROLES,
    SCHEMAS,
    SERVICE_SCHEMAS,
    VARIABLES,
    RoleLogins,
    apply_roles,
    scram_verifier,
)
from awasi.embedded import EmbeddedBroker, EmbeddedPostgres
from awasi.identity import add_user
from awasi.settings import Settings, SettingsError
from tests.support.services import running_service
from tests.support.stack import TEST_SETTINGS, PostgresCluster, role_dsn

SERVICES = ("intake", "router", "oversight")


@dataclass
class RolesDatabase:
    name: str
    admin: str  # the embedded server's superuser
    dsn: dict[str, str]  # owner / intake / router / oversight -> their DSN

    def env(self) -> dict[str, str]:
        return {VARIABLES[who]: dsn for who, dsn in self.dsn.items()}


def role_dsns(admin_dsn: str, password: str = "") -> dict[str, str]:
    return {who: role_dsn(admin_dsn, role, password and f"{password}{who}")
            for who, role in DEFAULT_ROLES.items()}


async def run_awasi(argv: list[str], **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "awasi", *argv, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _admin(pg: PostgresCluster, sql: str) -> None:
    conn = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def roles_db(pg: PostgresCluster) -> AsyncIterator[RolesDatabase]:
    """A fresh, empty database; the roles made by ``apply_roles`` (as the superuser),
    then every migration applied by the owner role."""
    name = f"r_{uuid.uuid4().hex[:12]}"
    await _admin(pg, f'CREATE DATABASE "{name}"')
    db = RolesDatabase(name, pg.dsn(name), role_dsns(pg.dsn(name)))
    try:
        conn = await asyncpg.connect(db.admin)
        try:
            await apply_roles(conn, RoleLogins.from_env(db.env()))
        finally:
            await conn.close()
        assert await cli.migrate_all(db.dsn["owner"])
        yield db
    finally:
        await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def tables_by_schema(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT schemaname, tablename, tableowner FROM pg_tables"
            " WHERE schemaname = any($1::text[]) ORDER BY 1, 2", list(SCHEMAS))
    finally:
        await conn.close()
    result: dict[str, list[str]] = {s: [] for s in SCHEMAS}
    for r in rows:
        assert r["tableowner"] == DEFAULT_ROLES["owner"], dict(r)
        result[r["schemaname"]].append(f'{r["schemaname"]}.{r["tablename"]}')
    return result


# --- the declared matrix --------------------------------------------------------------

def test_the_roles_cover_exactly_the_schemas_the_platform_migrates() -> None:
    assert [schema for schema, _ in cli.all_schema_migrations()] == list(SCHEMAS)
    assert set(SERVICE_SCHEMAS) == set(cli.SERVICES)
    for service, schemas in SERVICE_SCHEMAS.items():
        assert schemas[0] == cli.service_module(service).SCHEMA
        assert set(schemas) <= set(SCHEMAS)


def test_role_logins_come_from_the_dsns_and_refuse_placeholders() -> None:
    env = {var: f"postgresql://awasi_{who}:pw{who}@db/awasi" for who, var in VARIABLES.items()}
    logins = RoleLogins.from_env(env)
    assert logins.owner.role == "awasi_owner" and logins.owner.password == "pwowner"
    assert {s: (lg.role, lg.password) for s, lg in logins.services.items()} == {
        "intake": ("awasi_intake", "pwintake"), "router": ("awasi_router", "pwrouter"),
        "oversight": ("awasi_oversight", "pwoversight")}
    for var, bad, message in (
        ("AWASI_DB_ROUTER_URL", "", "AWASI_DB_ROUTER_URL is not set"),
        ("AWASI_DB_ROUTER_URL", "postgresql://awasi_intake:x@db/awasi", "four different"),
        ("AWASI_DB_OWNER_URL", "postgresql://Robert';--:x@db/awasi", "AWASI_DB_OWNER_URL"),
        ("AWASI_DB_INTAKE_URL", "postgresql://awasi_intake:change-me-hex-only-1@db/awasi",
         "placeholder"),
        ("AWASI_DB_INTAKE_URL", "postgresql://awasi_intake:REPLACE@db/awasi", "placeholder"),
    ):
        with pytest.raises(SettingsError, match=message):
            RoleLogins.from_env({**env, var: bad})


# --- what each role may and may not do ------------------------------------------------

async def test_every_service_role_is_refused_every_other_schema(roles_db: RolesDatabase) -> None:
    tables = await tables_by_schema(roles_db.admin)
    assert "intake.reporters" in tables["intake"]
    assert all(tables.values()), tables
    checked = 0
    for service in SERVICES:
        conn = await asyncpg.connect(roles_db.dsn[service])
        try:
            assert await conn.fetchval("SELECT current_user") == DEFAULT_ROLES[service]
            for schema, names in tables.items():
                for table in names:
                    if schema in SERVICE_SCHEMAS[service]:
                        await conn.fetchval(f"SELECT count(*) FROM {table}")
                        continue
                    with pytest.raises(asyncpg.InsufficientPrivilegeError,
                                       match="permission denied"):
                        await conn.fetchval(f"SELECT count(*) FROM {table}")
                    checked += 1
        finally:
            await conn.close()
    # intake: 3 foreign schemas, router and oversight: 2 each.
    assert checked == sum(len(tables[s]) for svc in SERVICES for s in SCHEMAS
                          if s not in SERVICE_SCHEMAS[svc])
    # The pair the issue names, spelled out: the router may not read reporters' contacts.
    router = await asyncpg.connect(roles_db.dsn["router"])
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as caught:
            await router.fetch("SELECT name, phone, email FROM intake.reporters")
        assert caught.value.sqlstate == "42501"
    finally:
        await router.close()


async def test_service_roles_write_their_own_tables_but_change_no_schema(
        roles_db: RolesDatabase) -> None:
    for service in SERVICES:
        own = SERVICE_SCHEMAS[service][0]
        conn = await asyncpg.connect(roles_db.dsn[service])
        try:
            async with conn.transaction():
                # The backbone's dedupe table, in every service schema.
                await conn.execute(
                    f"INSERT INTO {own}.processed_events (consumer, event_id)"
                    " VALUES ('roles-test', $1)", uuid.uuid4())
                assert await conn.execute(
                    f"DELETE FROM {own}.processed_events WHERE consumer = 'roles-test'"
                ) == "DELETE 1"
            for ddl in (f"CREATE TABLE {own}.sneaky (x int)",
                        f"ALTER TABLE {own}.processed_events ADD COLUMN sneaky int",
                        f"DROP TABLE {own}.processed_events",
                        "CREATE TABLE public.sneaky (x int)",
                        "CREATE SCHEMA sneaky"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(ddl)
        finally:
            await conn.close()


async def test_tables_from_later_migrations_are_granted_by_default(
        roles_db: RolesDatabase) -> None:
    later = Migration(9990, "9990_later.sql",
                      "CREATE TABLE later_things (id bigserial PRIMARY KEY, note text);")
    owner = await asyncpg.connect(roles_db.dsn["owner"])
    try:
        assert await migrate_schema(owner, "router", [later]) == ["router/9990_later.sql"]
    finally:
        await owner.close()
    router = await asyncpg.connect(roles_db.dsn["router"])
    intake = await asyncpg.connect(roles_db.dsn["intake"])
    try:
        # The serial's sequence is granted too (nextval needs USAGE).
        assert await router.fetchval(
            "INSERT INTO router.later_things (note) VALUES ('x') RETURNING id") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await intake.fetch("SELECT * FROM router.later_things")
    finally:
        await router.close()
        await intake.close()


async def test_a_service_role_checks_migrations_and_never_applies_them(
        roles_db: RolesDatabase) -> None:
    from services.router.app import SCHEMA, migrations

    conn = await asyncpg.connect(roles_db.dsn["router"])
    try:
        # Up to date: nothing to do, nothing refused.
        assert await migrate_schema(conn, SCHEMA, migrations()) == []
        pending = [*migrations(), Migration(9991, "9991_pending.sql", "SELECT 1;")]
        with pytest.raises(MigrationError, match=r"awasi migrate.*owner|9991_pending"):
            await migrate_schema(conn, SCHEMA, pending)
        assert await conn.fetchval(
            "SELECT count(*) FROM router.schema_migrations WHERE version = 9991") == 0
    finally:
        await conn.close()
    # `awasi migrate` as a service role stops with the reason, not a traceback.
    rc, _, err = await run_awasi(["migrate"], AWASI_DATABASE_URL=roles_db.dsn["router"])
    assert rc == 3, err
    assert "awasi migrate" in err and "owner" in err
    assert "Traceback" not in err
    # So does a service started with a role that may not use its schema (here intake
    # with the router's DSN): at start, before it serves anything.
    rc, _, err = await run_awasi(
        ["serve", "intake"], AWASI_DATABASE_URL=roles_db.dsn["router"],
        AWASI_KAFKA_BOOTSTRAP="127.0.0.1:9", AWASI_SECRET_KEY=TEST_SETTINGS["secret_key"],
        AWASI_INTAKE_PORT="0")
    assert rc == 3, err
    assert "awasi_router may not read schema intake" in err


async def test_the_services_each_as_their_own_role_carry_a_complaint_end_to_end(
        roles_db: RolesDatabase, broker: EmbeddedBroker) -> None:
    base = Settings.from_env({}, kafka_bootstrap=broker.bootstrap, **TEST_SETTINGS)
    # People are created by an operator command, run as the owner (the migrate job).
    pool = await asyncpg.create_pool(roles_db.dsn["owner"], min_size=1, max_size=1)
    try:
        await add_user(pool, username="pupr.roles", password="rahasia-123", role="staff",
                       agency="MDN-PUPR")
        await add_user(pool, username="panel.roles", password="rahasia-123", role="panel")
    finally:
        await pool.close()

    def as_role(service: str) -> Settings:
        return base.with_(database_url=roles_db.dsn[service])

    async with running_service("intake", as_role("intake")) as intake, \
            running_service("router", as_role("router")) as router, \
            running_service("oversight", as_role("oversight")) as oversight:
        r = await intake.post("/api/v1/complaints", json={
            "region": "MDN", "category": "jalan-rusak", "privacy": "named",
            "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
            "description": "Jalan berlubang besar di Jl. Gatot Subroto, sudah dua bulan."})
        assert r.status == 201, await r.text()
        code = (await r.json())["tracking_code"]

        async def logged_in(client: Any, username: str) -> dict[str, str]:
            r = await client.post("/api/v1/auth/login",
                                  json={"username": username, "password": "rahasia-123"})
            assert r.status == 200, await r.text()
            client.session.cookie_jar.clear()
            return {"Authorization": f"Bearer {(await r.json())['token']}"}

        staff = await logged_in(router, "pupr.roles")
        panel = await logged_in(oversight, "panel.roles")

        async def eventually(probe: Any, what: str, within: float = 30.0) -> Any:
            deadline = asyncio.get_running_loop().time() + within
            while not (value := await probe()):
                assert asyncio.get_running_loop().time() < deadline, f"no {what}"
                await asyncio.sleep(0.1)
            return value

        async def ticket() -> Any:
            r = await router.get("/api/v1/tickets", params={"tracking_code": code},
                                 headers=staff)
            assert r.status == 200, await r.text()
            return (await r.json())["tickets"]

        (t,) = await eventually(ticket, "ticket at the router")
        r = await router.post(f"/api/v1/tickets/{t['id']}/acknowledge", headers=staff)
        assert r.status == 200, await r.text()

        async def acknowledged_at_intake() -> bool:
            r = await intake.get(f"/api/v1/complaints/{code}")
            body = await r.json()
            return r.status == 200 and body["status"] == "acknowledged" \
                and body["agency"]["code"] == "MDN-PUPR"

        await eventually(acknowledged_at_intake, "acknowledgement back at intake")

        async def timeline() -> Any:
            r = await oversight.get(f"/api/v1/cases/{code}/timeline", headers=panel)
            if r.status != 200:
                return None
            text = await r.text()
            return text if "ticket.acknowledged" in text else None

        text = await eventually(timeline, "the case's timeline at oversight")
        assert "complaint.submitted" in text
        # Nothing of the reporter crossed into the other services' schemas.
        assert "Siti" not in text and "6281234567890" not in text


async def test_an_existing_single_user_database_is_adopted(database_url: str) -> None:
    """A database migrated before the roles existed (by the superuser, as the test
    template is): the command hands every schema and object to the owner and grants
    them, so the services can run as their roles without re-creating anything."""
    env = {VARIABLES[w]: dsn for w, dsn in role_dsns(database_url).items()}
    conn = await asyncpg.connect(database_url)
    try:
        before = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tableowner = current_user"
            " AND schemaname = any($1::text[])", list(SCHEMAS))
        assert before > 10
        done = await apply_roles(conn, RoleLogins.from_env(env))
        assert any("objects handed over" in line for line in done)
        # Idempotent: a second run hands nothing over.
        again = await apply_roles(conn, RoleLogins.from_env(env))
        assert not any("handed over" in line for line in again)
    finally:
        await conn.close()
    await tables_by_schema(database_url)  # asserts the owner of every table
    # The trigger functions were handed over too.
    conn = await asyncpg.connect(database_url)
    try:
        owners = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(p.proowner) AS owner FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = any($1::text[])"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid"
            "   AND d.deptype = 'e')",  # an extension's functions stay the extension's
            list(SCHEMAS))
        assert [r["owner"] for r in owners] == [DEFAULT_ROLES["owner"]]
    finally:
        await conn.close()
    router = await asyncpg.connect(env["AWASI_DB_ROUTER_URL"])
    try:
        await router.fetchval("SELECT count(*) FROM router.tickets")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await router.fetchval("SELECT count(*) FROM intake.complaints")
    finally:
        await router.close()


# --- passwords -------------------------------------------------------------------------

def test_scram_verifier_has_postgresqls_form() -> None:
    v = scram_verifier("rahasia", salt=b"0123456789abcdef")
    head, keys = v.split("$", 2)[1:]
    assert v.startswith("SCRAM-SHA-256$4096:")
    assert head == "4096:MDEyMzQ1Njc4OWFiY2RlZg=="
    stored, server = keys.split(":")
    assert len(stored) == len(server) == 44
    assert scram_verifier("rahasia", salt=b"0123456789abcdef") == v
    assert scram_verifier("rahasia") != v  # a fresh salt each time


@pytest.fixture(scope="module")
def scram_server(tmp_root: Path) -> Any:
    """A second embedded PostgreSQL that asks every role but its superuser for a
    SCRAM-SHA-256 password on its socket (the session's server trusts everyone)."""
    server = EmbeddedPostgres(tmp_root / f"scram{uuid.uuid4().hex[:6]}")
    server.start()
    hba = server.data_dir / "pg_hba.conf"
    hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n")
    try:
        yield server
    finally:
        server.stop()


async def test_roles_log_in_with_their_password_and_rotation_changes_it(
        scram_server: EmbeddedPostgres) -> None:
    admin = scram_server.uri("postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute("SELECT pg_reload_conf()")
        first = role_dsns(admin, "first")
        await apply_roles(conn, RoleLogins.from_env(
            {VARIABLES[w]: d for w, d in first.items()}))
    finally:
        await conn.close()

    async def who(dsn: str) -> str:
        c = await asyncpg.connect(dsn)
        try:
            return str(await c.fetchval("SELECT current_user"))
        finally:
            await c.close()

    assert await who(first["intake"]) == "awasi_intake"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await who(role_dsn(admin, "awasi_intake", "firstrouter"))
    # Rotation: the same command with new passwords; the old ones stop working.
    second = role_dsns(admin, "second")
    rc, out, err = await run_awasi(["db", "roles"], AWASI_DATABASE_URL=admin,
                                   **{VARIABLES[w]: d for w, d in second.items()})
    assert rc == 0, err
    assert "role awasi_intake: exists, password set" in out
    assert "second" not in out + err  # no password is printed
    for service in SERVICES:
        assert await who(second[service]) == DEFAULT_ROLES[service]
        with pytest.raises(asyncpg.InvalidPasswordError):
            await who(first[service])


async def test_a_superuser_is_refused_as_a_service_role(pg: PostgresCluster) -> None:
    name = f"r_{uuid.uuid4().hex[:12]}"
    await _admin(pg, f'CREATE DATABASE "{name}"')
    try:
        dsns = role_dsns(pg.dsn(name))
        dsns["router"] = pg.dsn(name)  # the server's superuser, postgres
        rc, out, err = await run_awasi(["db", "roles"], AWASI_DATABASE_URL=pg.dsn(name),
                                       **{VARIABLES[w]: d for w, d in dsns.items()})
        assert rc == 2, out + err
        assert "role postgres is a superuser" in err and "nothing was changed" in err
        conn = await asyncpg.connect(pg.dsn(name))
        try:
            # One transaction: not even the schemas were made.
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname = any($1::text[])",
                list(SCHEMAS)) == 0
        finally:
            await conn.close()
    finally:
        await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_awasi_db_roles_names_a_missing_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES.values()}
    env.update({"AWASI_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "AWASI_DB_OWNER_URL": "postgresql://awasi_owner:x@db/awasi"})
    result = subprocess.run([sys.executable, "-m", "awasi", "db", "roles"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert "AWASI_DB_INTAKE_URL is not set" in result.stderr
