"""Test-session infrastructure: the embedded PostgreSQL (one per session, a fresh
database per test cloned from a migrated template) and a fresh embedded broker per
test (it starts in milliseconds, so tests never see each other's topics)."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from awasi.embedded import EmbeddedBroker, EmbeddedPostgres

TEMPLATE = "awasi_template"

# Settings for tests: fast consumer-group joins on Tansu (TESTING.md), short polls.
TEST_SETTINGS = {
    "kafka_session_timeout_ms": 1000,
    "kafka_heartbeat_interval_ms": 200,
    "kafka_rebalance_timeout_ms": 1000,
    "kafka_request_timeout_ms": 3000,
    "kafka_fetch_max_wait_ms": 50,  # Tansu holds a fetch for the whole wait
    "relay_poll_interval_s": 0.2,
    "consumer_retry_backoff_s": 0.05,
    "scheduler_interval_s": 0.2,
    # The statistics snapshot refreshes as often as the scheduler looks (tests read
    # the dashboard right after feeding events).
    "stats_refresh_s": 0.2,
    # Every test session signs its checkpoints with a key of its own.
    "audit_signing_key": base64.b64encode(os.urandom(32)).decode(),
    "db_pool_min": 1,
    "db_pool_max": 5,
    "log_json": False,
    "shutdown_timeout_s": 3.0,
    # `awasi serve` refuses the built-in development key (awasi/secretkey.py).
    "secret_key": "test-only-secret-key-not-for-production-0123456789",
}


def process_env(database_url: str, bootstrap: str) -> dict[str, str]:
    """Environment for a service started as a real process in a test."""
    env = dict(os.environ)
    env.update({f"AWASI_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items()})
    env["AWASI_DATABASE_URL"] = database_url
    env["AWASI_KAFKA_BOOTSTRAP"] = bootstrap
    return env


def role_dsn(dsn: str, role: str, password: str = "") -> str:
    """``dsn`` with another user (and password): the embedded server's DSNs carry
    ``postgres`` and a Unix socket in the query string."""
    parts = urlsplit(dsn)
    netloc = parts.netloc.rpartition("@")[2]
    auth = f"{quote(role)}:{quote(password, safe='')}" if password else quote(role)
    return urlunsplit(parts._replace(netloc=f"{auth}@{netloc}"))


@dataclass
class PostgresCluster:
    server: EmbeddedPostgres

    def dsn(self, database: str) -> str:
        return self.server.uri(database)

    async def create_template(self) -> None:
        from awasi.cli import migrate_all

        conn = await asyncpg.connect(self.dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await conn.close()
        await migrate_all(self.dsn(TEMPLATE))

    async def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.dsn("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        finally:
            await conn.close()
        return name

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def start_cluster(root: Path) -> PostgresCluster:
    server = EmbeddedPostgres(root / "pg")
    server.start()
    return PostgresCluster(server)


def start_broker() -> EmbeddedBroker:
    broker = EmbeddedBroker()
    broker.start()
    return broker
