"""Identifiers of records that only grow: events, complaints, tickets, survey answers.

They are UUIDv7 (RFC 9562; the ``uuid6`` package, as Python 3.11's ``uuid`` has no
version 7): the first 48 bits are the creation time in milliseconds, the other 74
random. Two ids made a moment apart sort next to each other, so a new row's entry in
an index on its id lands beside the other recent ones, in pages already in memory.
A random UUIDv4 lands on any page of the index: at 10M complaints oversight's
``timeline.event_id`` index (40M entries) read about one page from disk per event of
a burst (docs/BENCHMARKS.md, "Random keys"). The time in the id is no secret: it is
the time of the event or submission, which every record carries anyway.

Ids that let someone fetch a file (photos, staff attachments) stay UUIDv4: there
all 122 bits should be unguessable."""

from __future__ import annotations

import uuid

from uuid6 import uuid7


def new_id() -> uuid.UUID:
    """A new time-ordered id (a plain ``uuid.UUID``, version 7)."""
    return uuid.UUID(int=uuid7().int)
