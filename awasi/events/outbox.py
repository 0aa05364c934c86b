"""Writing events into a service's outbox, inside the caller's transaction."""

from __future__ import annotations

import asyncpg

from awasi.events.envelope import Envelope


async def add_to_outbox(
    conn: asyncpg.Connection, schema: str, topic: str, *envelopes: Envelope
) -> None:
    """Insert envelopes into ``<schema>.outbox``; call inside the state change's transaction.

    The key is the complaint id, so one complaint's events stay in order on the topic.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("add_to_outbox must run inside the state change's transaction")
    await conn.executemany(
        f'INSERT INTO "{schema}".outbox (event_id, topic, key, event_type, envelope)'
        " VALUES ($1, $2, $3, $4, $5::jsonb)",
        [
            (e.event_id, topic, e.complaint_id, e.type, e.model_dump(mode="json"))
            for e in envelopes
        ],
    )
