"""Writing events into a service's outbox, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from awasi import tracing
from awasi.events.envelope import Envelope


async def add_to_outbox(
    conn: asyncpg.Connection, schema: str, topic: str, *envelopes: Envelope,
    trace_contexts: Sequence[dict[str, str] | None] | None = None,
) -> None:
    """Insert envelopes into ``<schema>.outbox``; call inside the state change's transaction.

    The key is the complaint id, so one complaint's events stay in order on the topic.
    Each row keeps a trace context, which the relay continues: the current one, or
    ``trace_contexts`` (one per envelope) for rows written on behalf of several
    requests (a group commit).
    """
    if not conn.is_in_transaction():
        raise RuntimeError("add_to_outbox must run inside the state change's transaction")
    if not envelopes:
        return
    if trace_contexts is None:
        trace_contexts = [tracing.carrier()] * len(envelopes)
    elif len(trace_contexts) != len(envelopes):
        raise ValueError("one trace context per envelope")
    # One statement for the lot (arrays, one per column): the ids, and so the
    # publication order, follow the order of ``envelopes``.
    await conn.execute(
        f'INSERT INTO "{schema}".outbox'
        " (event_id, topic, key, event_type, envelope, trace_context)"
        " SELECT e, $2, k, t, v, c"
        " FROM unnest($1::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[])"
        " WITH ORDINALITY AS u(e, k, t, v, c, n) ORDER BY n",
        [e.event_id for e in envelopes], topic, [e.complaint_id for e in envelopes],
        [e.type for e in envelopes], [e.model_dump(mode="json") for e in envelopes],
        list(trace_contexts),
    )
