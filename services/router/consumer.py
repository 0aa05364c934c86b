"""The router's event handler: ``complaint.*`` from intake, ``case.*``, ``finding.*``
and ``deadline.*`` from oversight. Runs inside the idempotent consumer's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awasi.catalog import Catalog
from awasi.events.chunked import ChunkedHandler, TraceContexts
from awasi.events.consumer import Handler
from awasi.events.envelope import Envelope
from services.router import domain, routing


def make_handler(catalog: Catalog) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await domain.apply_event(conn, catalog, envelope)

    return handle


def chunked(catalog: Catalog, handler: Handler) -> ChunkedHandler:
    """``handler`` for one event at a time, with the submissions of a chunk routed
    set-based (``routing.route_many``): every complaint comes through there."""
    async def route(conn: asyncpg.Connection, envelopes: Sequence[Envelope],
                    contexts: TraceContexts) -> None:
        await routing.route_many(conn, catalog, envelopes, contexts)

    return ChunkedHandler(handler, {"complaint.submitted": route})


def accepts(envelope: Envelope) -> bool:
    return envelope.type in domain.HANDLED
