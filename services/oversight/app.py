"""The oversight service's app factory: the case timeline (hash-chained), deadlines
and escalation, the panel's review queue and console, and the public dashboard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

import awasi.identity as identity
from awasi.catalog import load_catalog
from awasi.db import load_migrations, migrate_schema
from awasi.events import topics
from awasi.events.consumer import Handler
from awasi.i18n import Catalogs
from awasi.settings import Settings
from awasi.web import keys as web_keys
from awasi.web.app import (
    consumer,
    create_base_app,
    database,
    producer_ctx,
    relay,
    schema_migrations,
)
from awasi.web.page_cache import PageCache
from services.oversight import (
    chain,
    evaluation,
    evaluation_pages,
    handlers,
    keys,
    notes,
    pages,
    recommendations,
    reports,
    rollups,
    supports,
)
from services.oversight.audit_key import load_signing_key
from services.oversight.clock import Clock, SystemClock
from services.oversight.domain import Context, make_handler
from services.oversight.scheduler import scheduler_ctx

SCHEMA = "oversight"
MIGRATIONS = "services.oversight.migrations"
IDENTITY_MIGRATIONS = "awasi.identity.migrations"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def migrations() -> list[Any]:
    return schema_migrations(MIGRATIONS)


async def identity_schema(app: web.Application) -> AsyncIterator[None]:
    """Make sure the staff identity schema exists (its migrations are idempotent and
    run under their own advisory lock), so oversight can start on its own."""
    async with app[web_keys.POOL].acquire() as conn:
        # (by package name: the package's migrations() is shadowed by its subpackage)
        await migrate_schema(conn, identity.SCHEMA, load_migrations(IDENTITY_MIGRATIONS))
    yield


async def signing_key(app: web.Application) -> AsyncIterator[None]:
    """Load the audit signing key at start (a malformed one stops the service, naming
    the setting); unset, the data folder's key file, created on first start."""
    app[keys.SIGNING_KEY] = load_signing_key(app[web_keys.SETTINGS])
    yield


async def stats_rollups(app: web.Application) -> AsyncIterator[None]:
    """Backfill the statistics' rollups once, after the migration that added them
    asked for it (before the consumer starts keeping them)."""
    async with app[web_keys.BACKGROUND_POOL].acquire() as conn:
        await rollups.rebuild_if_asked(conn, app[keys.CATALOG])
    yield


# What oversight's consumer reads, and how it applies it: the app and the demo
# history (awasi/demo_history.py) wire the same.
TOPICS_READ = (topics.INTAKE, topics.ROUTER, topics.OVERSIGHT)


def event_handler(ctx: Context) -> Handler:
    """The consumer's handler: the case timeline, and the evaluation's events."""
    return evaluation.with_evaluation(make_handler(ctx), ctx)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the oversight app. ``clock`` defaults to the system clock; tests pass a
    controllable one. The catalog is loaded once, here."""
    catalog = load_catalog(settings.catalog)
    clock = clock or SystemClock()
    app = create_base_app(settings, "oversight", title="Awasi oversight")
    app[keys.CATALOG] = catalog
    app[keys.CLOCK] = clock
    app[keys.MESSAGES] = Catalogs(LOCALE_DIR)
    app[keys.PAGES] = PageCache()
    ctx = Context(catalog=catalog, clock=clock)
    app.cleanup_ctx.extend([
        signing_key,
        database(SCHEMA, migrations()),
        identity_schema,
        stats_rollups,
        producer_ctx,
        relay(SCHEMA),
        consumer("oversight", SCHEMA, TOPICS_READ, event_handler(ctx),
                 prepare=chain.prepare),
        scheduler_ctx,
        notes.http_client,
    ])
    identity.add_auth_routes(app)
    handlers.add_routes(app)
    evaluation.add_routes(app)
    supports.add_routes(app)
    reports.add_routes(app)
    recommendations.add_routes(app)
    evaluation_pages.setup(app)
    pages.setup(app)
    return app
