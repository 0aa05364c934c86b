"""The oversight service's app factory."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.settings import Settings
from awasi.web.app import consumer, create_base_app, database, producer_ctx, relay, schema_migrations

SCHEMA = "oversight"
MIGRATIONS = "services.oversight.migrations"


def migrations() -> list[Any]:
    return schema_migrations(MIGRATIONS)


async def record_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO oversight.event_log (event_id, complaint_id, event_type, occurred_at)"
        " VALUES ($1, $2, $3, $4)",
        envelope.event_id, envelope.complaint_id, envelope.type, envelope.occurred_at,
    )


def create_app(settings: Settings) -> web.Application:
    app = create_base_app(settings, "oversight", title="Awasi oversight")
    app.cleanup_ctx.extend([
        database(SCHEMA, migrations()),
        producer_ctx,
        relay(SCHEMA),
        consumer("oversight", SCHEMA, (topics.INTAKE, topics.ROUTER, topics.OVERSIGHT), record_event),
    ])
    return app
