"""A consumer handler that applies runs of events set-based.

The idempotent consumer's fast path holds a chunk of one partition's records in one
transaction. Applying them one by one costs a few database round trips per event,
which at hundreds of events a second is most of a consumer's time. A
``ChunkedHandler`` is still a handler of one event (the consumer's careful path, with
a savepoint per event, calls it so), and on the fast path it is handed the chunk's
new events: each maximal run of consecutive events of a type with a set-based
function goes to that function in one call, every other event to the per-event
handler, in the chunk's order. Runs never reorder events, so the order of one
complaint's events within a partition holds whatever types they have.

Each event keeps its own trace: the consumer hands ``span_of`` (an event's span,
continuing the trace its record names); a per-event call runs inside it, and for a
run each event's span is opened in turn to take its trace context, which the
set-based function receives, one per event, to carry on (e.g. with the outbox rows
it writes). The run's work itself is one set-based step: a span of its own linked
to every event's trace (``tracing.batch_span``); a run of one runs in its event's span.

A set-based function must have the effect of applying its events one by one in
order, and raise as the per-event handler would: the consumer then rolls the chunk
back and runs it again one event at a time, so a poison event fails alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext

import asyncpg

from awasi import tracing
from awasi.events.envelope import Envelope
from awasi.jsonlog import event_context

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
# Applies several events of one type, in order, inside the caller's transaction; the
# third argument is each event's trace context (``tracing.carrier()``), in order.
TraceContexts = Sequence[dict[str, str] | None]
ManyHandler = Callable[[asyncpg.Connection, Sequence[Envelope], TraceContexts], Awaitable[None]]
SpanOf = Callable[[Envelope], AbstractContextManager[object]]


def runs(envelopes: Sequence[Envelope], types: Mapping[str, object] | frozenset[str],
         ) -> Iterator[tuple[str | None, list[Envelope]]]:
    """Split ``envelopes`` into maximal runs of consecutive events of one type in
    ``types`` (yielded with that type) and single other events (yielded with None),
    in order."""
    for key, group in itertools.groupby(envelopes, lambda e: e.type if e.type in types else None):
        if key is None:
            for envelope in group:
                yield None, [envelope]
        else:
            yield key, list(group)


class ChunkedHandler:
    """A per-event handler with set-based functions for some event types (see the
    module's docstring)."""

    def __init__(self, handler: Handler, many: Mapping[str, ManyHandler]) -> None:
        self.handler = handler
        self.many = dict(many)

    async def __call__(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        await self.handler(conn, envelope)

    async def apply_chunk(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope],
                          span_of: SpanOf | None = None) -> None:
        """Apply ``envelopes`` in order inside the caller's transaction; raises what
        the handler or a set-based function raised (the transaction is then lost)."""
        def span(envelope: Envelope) -> AbstractContextManager[object]:
            return span_of(envelope) if span_of is not None else nullcontext()

        for kind, run in runs(envelopes, self.many):
            if kind is None:
                envelope = run[0]
                with event_context(envelope.complaint_id, str(envelope.event_id)), \
                        span(envelope):
                    await self.handler(conn, envelope)
            elif len(run) == 1:
                # A run of one is that event's work: inside its span, as one by one.
                envelope = run[0]
                with event_context(envelope.complaint_id, str(envelope.event_id)), \
                        span(envelope):
                    await self.many[kind](conn, run, [tracing.carrier()])
            else:
                contexts = []
                for envelope in run:
                    with span(envelope):
                        contexts.append(tracing.carrier())
                with tracing.batch_span(f"apply {kind} run", contexts,
                                        {"awasi.event_type": kind, "awasi.run": len(run)}):
                    await self.many[kind](conn, run, contexts)
