"""The router's event handler: ``complaint.*`` from intake, ``case.*``, ``finding.*``
and ``deadline.*`` from oversight. Runs inside the idempotent consumer's transaction."""

from __future__ import annotations

import asyncpg

from awasi.catalog import Catalog
from awasi.events.consumer import Handler
from awasi.events.envelope import Envelope
from services.router import domain


def make_handler(catalog: Catalog) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await domain.apply_event(conn, catalog, envelope)

    return handle


def accepts(envelope: Envelope) -> bool:
    return envelope.type in domain.HANDLED
