"""Fixtures for the whole suite: real embedded PostgreSQL and broker, services built
with their own app factories, Chromium for browser tests.

- ``pg`` (session): the embedded PostgreSQL with a migrated template database.
- ``database_url``: a fresh database cloned from the template, dropped afterwards.
- ``broker``: a fresh Tansu broker for this test, stopped afterwards.
- ``settings``: Settings pointing at both, with test-friendly timings.
- ``api``: the Telegram Bot API stand-in (tests/support/botapi.py).

Shared helpers live in tests/support/ (docs/TESTING.md), never in a collected test
module.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from awasi.embedded import EmbeddedBroker, ensure_runtime_dir
from awasi.settings import Settings
from tests.support.botapi import TOKEN, BotApi, running_botapi
from tests.support.stack import TEST_SETTINGS, PostgresCluster, start_broker, start_cluster

ensure_runtime_dir()

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    # Short and outside /root: pgserver's Unix socket lives in here (TESTING.md).
    root = Path(tempfile.mkdtemp(prefix="awt-", dir="/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg(tmp_root: Path) -> AsyncIterator[PostgresCluster]:
    cluster = start_cluster(tmp_root)
    try:
        await cluster.create_template()
        yield cluster
    finally:
        cluster.server.stop()


@pytest.fixture
async def database_url(pg: PostgresCluster) -> AsyncIterator[str]:
    name = await pg.create_database()
    try:
        yield pg.dsn(name)
    finally:
        await pg.drop_database(name)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = start_broker()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def settings(database_url: str, broker: EmbeddedBroker) -> Settings:
    return Settings.from_env(
        {}, database_url=database_url, kafka_bootstrap=broker.bootstrap, **TEST_SETTINGS
    )


# --- the Telegram Bot API stand-in -------------------------------------------------------

@pytest.fixture
async def api() -> AsyncIterator[BotApi]:
    """The local Bot API stand-in; fails the test if the bot called anything it does
    not know."""
    async with running_botapi(TOKEN) as stand_in:
        yield stand_in
        stand_in.assert_clean()


# --- browser tests (pytest-playwright-asyncio) ---------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (apt-get install chromium)")
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"],
    }
