"""Routing new complaints: ``complaint.submitted`` events become tickets, set-based.

Every complaint passes through here, so this is the router's hottest path. The
routing decision and the deadlines come from the in-memory catalog; then one
statement inserts the tickets of a whole run of events with their first two
timeline entries (arrays through ``unnest``), and one more puts their routing
events in the outbox: two round trips for a run, not two per complaint. The
consumer's fast path hands a run of consecutive submissions of one partition
(awasi/events/chunked.py); its careful path, and anyone else, a run of one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from awasi import lifecycle, tracing
from awasi.catalog import Catalog, UnknownCode
from awasi.events import topics
from awasi.events.consumer import PoisonEvent
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import (
    ComplaintNeedsTriage,
    ComplaintRouted,
    ComplaintSubmitted,
    Deadlines,
    Payload,
)
from awasi.ids import new_id
from services.router import deadlines

SCHEMA = "router"
PRODUCER = "router"


@dataclass(frozen=True, slots=True)
class Planned:
    """A new ticket as the catalog routes it, and the event that says so."""

    ticket_id: uuid.UUID
    envelope: Envelope
    submitted: ComplaintSubmitted
    status: str
    agency: str | None
    rule: str
    triage_by: datetime | None
    acknowledge_by: datetime | None
    resolve_by: datetime | None
    warning_share: float
    seq: int
    first_kind: str
    first_data: dict[str, object]

    def event(self) -> Envelope:
        """The routing event (``complaint.routed`` or ``complaint.needs_triage``)."""
        p = self.submitted
        d = Deadlines(acknowledge_by=self.acknowledge_by, resolve_by=self.resolve_by,
                      triage_by=self.triage_by, dispute_until=None)
        payload: Payload
        if self.agency is None:
            payload = ComplaintNeedsTriage(tracking_code=p.tracking_code, region=p.region,
                                           category=p.category, deadlines=d)
        else:
            payload = ComplaintRouted(tracking_code=p.tracking_code, region=p.region,
                                      category=p.category, agency=self.agency, rule=self.rule,
                                      deadlines=d, warning_share=self.warning_share)
        return Envelope.build(payload, complaint_id=self.envelope.complaint_id,
                              producer=PRODUCER, occurred_at=self.envelope.occurred_at,
                              seq=self.seq)


def plan(catalog: Catalog, envelope: Envelope) -> Planned:
    """Route a ``complaint.submitted`` event: the catalog's category rule, else a
    keyword rule on the title and text, else the region's triage queue; deadlines
    count from the submission. Raises ``PoisonEvent`` for a region the catalog does
    not know."""
    p = envelope.typed_payload()
    assert isinstance(p, ComplaintSubmitted)
    text = f"{p.title or ''}\n{p.description}"
    try:
        decision = catalog.route(p.region, p.category, text)
    except UnknownCode as e:
        raise PoisonEvent(str(e)) from e
    start = p.submitted_at
    # The routing decision is the router's first fact: the next sequence number.
    seq = lifecycle.next_seq(lifecycle.State(seq=envelope.seq or 0))
    if decision.agency is None:
        kind = ComplaintNeedsTriage.EVENT_TYPE
        triage: datetime | None = deadlines.triage_by(catalog, p.region, p.category, start)
        ack = res = None
        share = 0.8
        data: dict[str, object] = {"rule": decision.rule}
    else:
        a = deadlines.assigned(catalog, p.region, decision.agency, p.category, start)
        kind = ComplaintRouted.EVENT_TYPE
        triage, ack, res, share = None, a.acknowledge_by, a.resolve_by, a.policy.warning_share
        data = {"agency": decision.agency, "rule": decision.rule}
    return Planned(
        ticket_id=new_id(), envelope=envelope, submitted=p,
        status=lifecycle.apply(lifecycle.State(), kind, seq).state.status,
        agency=decision.agency, rule=decision.rule, triage_by=triage, acknowledge_by=ack,
        resolve_by=res, warning_share=share, seq=seq, first_kind=kind, first_data=data)


# The tickets of a run and their first two timeline entries (the submission, then the
# routing decision) in one statement. ON CONFLICT: a complaint that has a ticket
# already (a redelivery under a new event id, or twice in one run) gets nothing; the
# RETURNING says which tickets are new, and only those get a routing event.
_INSERT = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[], $11::text[],
        $12::jsonb[], $13::timestamptz[], $14::text[], $15::text[], $16::text[],
        $17::timestamptz[], $18::timestamptz[], $19::timestamptz[], $20::int[],
        $21::text[], $22::timestamptz[], $23::jsonb[])
        WITH ORDINALITY AS u(id, complaint_id, tracking_code, region, category, title,
            description, location, privacy, reporter_ref, channel, submitted_data,
            submitted_at, status, agency, rule, triage_by, acknowledge_by, resolve_by,
            seq, first_kind, occurred_at, first_data, n)
), t AS (
    INSERT INTO router.tickets (id, complaint_id, tracking_code, region, category, title,
        description, location, privacy, reporter_ref, channel, photo_ids, submitted_at,
        status, agency, rule, assigned_at, triage_by, acknowledge_by, resolve_by,
        next_due, seq, status_seq)
    SELECT id, complaint_id, tracking_code, region, category, title, description,
        location, privacy, reporter_ref, channel,
        ARRAY(SELECT jsonb_array_elements_text(submitted_data -> 'photo_ids')),
        submitted_at, status, agency, rule,
        CASE WHEN agency IS NULL THEN NULL ELSE submitted_at END, triage_by,
        acknowledge_by, resolve_by,
        CASE WHEN agency IS NULL THEN triage_by ELSE acknowledge_by END, seq, seq
    FROM input ORDER BY n
    ON CONFLICT (complaint_id) DO NOTHING RETURNING id
), tl AS (
    INSERT INTO router.timeline (ticket_id, kind, occurred_at, actor, agency, data)
    SELECT i.id, e.kind, e.occurred_at, e.actor, e.agency, e.data
    FROM input i JOIN t ON t.id = i.id CROSS JOIN LATERAL (VALUES
        (1, 'complaint.submitted', i.submitted_at, 'citizen', NULL::text, i.submitted_data),
        (2, i.first_kind, i.occurred_at, 'router', i.agency, i.first_data)
    ) AS e(o, kind, occurred_at, actor, agency, data)
    ORDER BY i.n, e.o
)
SELECT coalesce(array_agg(id), '{}') FROM t
"""


def _columns(planned: Sequence[Planned]) -> list[list[Any]]:
    """The statement's arrays, one per column, in the order of ``planned``."""
    rows = [(x.ticket_id, x.envelope.complaint_id, x.submitted.tracking_code,
             x.submitted.region, x.submitted.category, x.submitted.title,
             x.submitted.description,
             x.submitted.location.model_dump(mode="json") if x.submitted.location else None,
             x.submitted.privacy, x.submitted.reporter_ref, x.submitted.channel,
             # The submission's timeline entry, whose photo ids are also the column's
             # (a list inside the jsonb[] would read as a second array dimension).
             {"channel": x.submitted.channel, "photo_ids": list(x.submitted.photo_ids)},
             x.submitted.submitted_at, x.status, x.agency, x.rule,
             x.triage_by, x.acknowledge_by, x.resolve_by, x.seq, x.first_kind,
             x.envelope.occurred_at, x.first_data) for x in planned]
    return [list(column) for column in zip(*rows, strict=True)]


async def route_many(conn: asyncpg.Connection, catalog: Catalog,
                     envelopes: Sequence[Envelope],
                     contexts: Sequence[dict[str, str] | None] | None = None) -> list[Planned]:
    """Create and route the tickets of ``complaint.submitted`` events, in order, inside
    the caller's transaction; returns the new tickets (a complaint that has one
    already gets nothing: the first of its events wins). Raises ``PoisonEvent`` for a
    region the catalog does not know (then nothing of the run may be kept: the
    consumer rolls back and retries it one event at a time).

    ``contexts``: each event's trace context, in order (the consumer's set-based path);
    without them every event is in the current trace (one event at a time)."""
    planned = [plan(catalog, e) for e in envelopes]
    if not planned:
        return []
    new = set(await conn.fetchval(_INSERT, *_columns(planned)))
    created, carriers = [], []
    for x, context in zip(planned, contexts or [None] * len(planned), strict=True):
        if x.ticket_id not in new:
            continue
        created.append(x)
        # The routing as a span of the complaint's own trace (codes from the catalog
        # only, never the complaint's words); its routing event carries it on.
        with tracing.span("route complaint", {
                "awasi.region": x.submitted.region, "awasi.category": x.submitted.category,
                "awasi.agency": x.agency or "", "awasi.routing.rule": str(x.rule)},
                context=tracing.extract(context)):
            carriers.append(tracing.carrier())
    await add_to_outbox(conn, SCHEMA, topics.ROUTER, *(x.event() for x in created),
                        trace_contexts=carriers)
    return created
