"""The router service's app factory: routing consumer, outbox relay, JSON API and
the agency desk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from opentelemetry.instrumentation.aiohttp_client import create_trace_config

from awasi import identity
from awasi.catalog import Catalog, load_catalog
from awasi.db import migrate_schema
from awasi.db.listen import Notifications
from awasi.events import topics
from awasi.events.consumer import Handler
from awasi.events.envelope import Envelope
from awasi.identity import add_auth_routes
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import (
    background,
    consumer,
    create_base_app,
    database,
    producer_ctx,
    relay,
    schema_migrations,
)
from services.router import (
    admin,
    api,
    attachments,
    db,
    desk,
    duplicates,
    notes,
    recommendations,
)
from services.router.consumer import accepts, chunked, make_handler
from services.router.keys import CATALOG, CLOCK, HTTP, QUEUE_CHANGES, QUEUE_TAGS, TRIGRAM
from services.router.live import KnownTags

SCHEMA = "router"
MIGRATIONS = "services.router.migrations"


def migrations() -> list[Any]:
    return schema_migrations(MIGRATIONS)


def _now() -> datetime:
    return datetime.now(UTC)


async def identity_schema(app: web.Application) -> AsyncIterator[None]:
    # The shared identity schema is migrated at start too (under its own advisory
    # lock, so oversight starting at the same moment is harmless).
    async with app[keys.POOL].acquire() as conn:
        await migrate_schema(conn, identity.SCHEMA, identity.migrations())
    # The router's migrations ran just before: whether they could add pg_trgm.
    app[TRIGRAM] = await db.has_trigram(app[keys.POOL])
    yield


async def queue_changes(app: web.Application) -> AsyncIterator[None]:
    feed = Notifications(app[keys.SETTINGS].require_database(), "router_queue")
    app[QUEUE_CHANGES] = feed
    app[QUEUE_TAGS] = KnownTags()
    async with background(feed.run(), "router-queue-listen", app):
        yield  # wake_long_polls closes the feed at shutdown


async def wake_long_polls(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for the requests in flight to finish.
    if QUEUE_CHANGES in app:
        app[QUEUE_CHANGES].close()


async def http_client(app: web.Application) -> AsyncIterator[None]:
    # For the server-side request to intake for a named reporter's contact. Traced by
    # the maintained aiohttp client instrumentation, which sends our traceparent to
    # intake; the URL is recorded without its query (it carries a signed token).
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=3),
        trace_configs=[create_trace_config(
            url_filter=lambda url: str(url.with_query(None)),
            tracer_provider=app[keys.TRACER_PROVIDER])])
    app[HTTP] = session
    try:
        yield
    finally:
        await session.close()


# What the router's consumer reads, and how it applies it: the app and the demo
# history (awasi/demo_history.py) wire the same.
TOPICS_READ = (topics.INTAKE, topics.OVERSIGHT)


def event_handling(catalog: Catalog) -> tuple[Handler, Callable[[Envelope], bool]]:
    """The consumer's handler and its filter of event types."""
    one_by_one = recommendations.with_recommendations(make_handler(catalog))
    return (chunked(catalog, one_by_one),
            lambda e: accepts(e) or e.type in recommendations.EVENT_TYPES)


def create_app(settings: Settings) -> web.Application:
    """The router app. Loads and validates the catalog now (``CatalogError`` names
    the line); opens the pool, producer, relay and consumer when it starts."""
    catalog = load_catalog(settings.catalog)
    app = create_base_app(settings, "router", title="Awasi router",
                          middlewares=(desk.locale_middleware,))
    app[CATALOG] = catalog
    app[CLOCK] = _now
    app.cleanup_ctx.extend([
        database(SCHEMA, migrations()),
        identity_schema,
        producer_ctx,
        relay(SCHEMA),
        consumer("router", SCHEMA, TOPICS_READ, *event_handling(catalog)),
        http_client,
        queue_changes,
    ])
    app.on_shutdown.append(wake_long_polls)
    add_auth_routes(app)
    api.add_routes(app)
    notes.add_routes(app)
    attachments.setup(app, settings.attachment_max_bytes)
    duplicates.setup(app)
    recommendations.add_routes(app)
    recommendations.add_pages(app)
    desk.setup(app)
    admin.add_pages(app)
    return app
