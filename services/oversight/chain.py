"""The tamper-evident timeline: hash chains over every case's events, in a fixed
number of partitions, all signed together by each checkpoint.

Why partitions. Until issue 18 there was one global chain: a gap-free ``seq`` and a
single ``chain_head`` row locked FOR UPDATE by every append until the end of the
consumer's transaction, so every event of every complaint waited for the one before
it to commit. A chain per complaint would not wait at all, but deleting a whole case
(every entry of it) or cutting a case's tail would then leave every remaining chain
valid. The middle way: ``chain_check.PARTITIONS`` (64) chains. An entry goes to the
partition of a stable hash of its complaint (of its own event id when it concerns no
complaint); each partition has a gap-free ``part_seq``, its own ``prev_hash`` links
and one head row in ``chain_heads``, locked only by appends to that partition. Two
complaints in different partitions append concurrently; a partition still mixes
many complaints, so deleting a whole case leaves a gap in (or breaks the links of)
every partition it touched, and a deleted tail no longer matches the partition head.

What catches a writer who recomputes a partition's hashes and its head: checkpoints
(``services.oversight.audit``) sign every head at once (legacy head and 64 partition
heads, ``heads`` in the signed message), so against any later checkpoint, a
rewritten, deleted or truncated partition is caught exactly as the single chain was.

Existing entries are not rehashed (that would invalidate checkpoints already
handed out): they stay the closed *legacy* chain (``part`` NULL, positions = ``seq``,
head ``chain_head``, no longer written), and every partition starts from the legacy
head's hash, so every partition entry also anchors the legacy chain. ``seq`` stays
each entry's row id, now from a sequence (its gaps mean nothing).

Locking. An append locks its partition's head row until the transaction ends, which
keeps ``part_seq`` in commit order without gaps. A consumer transaction applies a
chunk of events of several complaints, and two consumers (one per Kafka partition)
could then take two heads in opposite orders: ``lock_partitions`` takes all the
chunk's heads first, in partition order (the consumer's ``prepare`` hook), so they
never wait on each other in a cycle. The panel's transactions lock one partition
(``lock_head``) before the case row, as the consumer does.

The hash of an entry is SHA-256 over the previous hash and a canonical JSON of its
fields (``chain_check.entry_hash``). Verification (``verify``) walks each stream from
a given point (the whole chain for the CLI; the last verified points for the public,
incremental endpoint), feeding the rows to the pure ``chain_check.check``: cost is
proportional to the entries after those points, per partition.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime

import asyncpg

from awasi.events.envelope import Envelope
from services.oversight.chain_check import (
    GENESIS,
    PARTITIONS,
    Verdict,
    check,
    entry_hash,
    heads_digest,
    partition_of,
)

__all__ = ["GENESIS", "LEGACY", "PARTITIONS", "Verdict", "append", "entry_hash", "heads",
           "heads_digest", "lock_head", "lock_partitions", "partition_of", "verify"]

# The legacy chain's number wherever streams are numbered (heads, points, anchors).
LEGACY = -1
Points = Mapping[int, tuple[int, str]]

_COLUMNS = ("seq, part, part_seq, complaint_id, event_id, event_type, producer,"
            " occurred_at, recorded_at, payload, prev_hash, hash, actor")


def part_of(envelope: Envelope) -> int:
    return partition_of(envelope.complaint_id, envelope.event_id)


async def lock_partitions(conn: asyncpg.Connection, parts: Iterable[int]) -> None:
    """Lock these partitions' heads now, in partition order (rows are locked as the
    sorted scan returns them), for a transaction that will append to several."""
    await conn.execute(
        "SELECT 1 FROM oversight.chain_heads WHERE part = ANY($1::smallint[])"
        " ORDER BY part FOR UPDATE", sorted(set(parts)))


async def prepare(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
    """The consumer's hook before a chunk's handlers: lock every partition the chunk
    will append to, in order (see the module docstring, "Locking")."""
    await lock_partitions(conn, (part_of(e) for e in envelopes))


async def lock_head(conn: asyncpg.Connection, complaint_id: str) -> None:
    """Take the head lock of ``complaint_id``'s partition now, for a transaction that
    will append and also lock the case: the consumer takes heads before cases, so
    every such transaction must too, or the two could wait on each other."""
    await lock_partitions(conn, (partition_of(complaint_id, ""),))


async def append(conn: asyncpg.Connection, envelope: Envelope, recorded_at: datetime,
                 actor: str | None = None) -> int:
    """Append ``envelope`` (and the person who acted, if any) to its partition inside
    the caller's transaction; return the entry's ``seq`` (its row id).

    Locks the partition's head until the transaction ends (appends to one partition
    are serial by design; other partitions are not held)."""
    part = part_of(envelope)
    head = await conn.fetchrow(
        "SELECT last_seq, last_hash FROM oversight.chain_heads WHERE part = $1 FOR UPDATE",
        part)
    pos = head["last_seq"] + 1
    # Normalise the payload through JSON, as jsonb will hand it back.
    payload = json.loads(json.dumps(envelope.payload))
    digest = entry_hash(
        head["last_hash"], seq=pos, complaint_id=envelope.complaint_id,
        event_id=envelope.event_id, event_type=envelope.type, producer=envelope.producer,
        occurred_at=envelope.occurred_at, recorded_at=recorded_at, payload=payload,
        actor=actor, part=part,
    )
    seq: int = await conn.fetchval(
        "INSERT INTO oversight.timeline (part, part_seq, complaint_id, event_id,"
        " event_type, producer, occurred_at, recorded_at, payload, prev_hash, hash, actor)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12) RETURNING seq",
        part, pos, envelope.complaint_id, envelope.event_id, envelope.type,
        envelope.producer, envelope.occurred_at, recorded_at, payload, head["last_hash"],
        digest, actor,
    )
    await conn.execute(
        "UPDATE oversight.chain_heads SET last_seq = $2, last_hash = $3 WHERE part = $1",
        part, pos, digest)
    return seq


async def heads(conn: asyncpg.Connection) -> list[tuple[int, int, str]]:
    """Every committed head ``(stream, position, hash)``: the legacy one first."""
    legacy = await conn.fetchrow("SELECT last_seq, last_hash FROM oversight.chain_head")
    rows = await conn.fetch(
        "SELECT part, last_seq, last_hash FROM oversight.chain_heads ORDER BY part")
    return [(LEGACY, legacy["last_seq"], legacy["last_hash"]),
            *((r["part"], r["last_seq"], r["last_hash"]) for r in rows)]


async def _entry_at(conn: asyncpg.Connection, stream: int, pos: int) -> asyncpg.Record | None:
    if stream == LEGACY:
        return await conn.fetchrow(f"SELECT {_COLUMNS} FROM oversight.timeline"
                                   " WHERE seq = $1 AND part IS NULL", pos)
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM oversight.timeline"
                               " WHERE part = $1 AND part_seq = $2", stream, pos)


async def entry_at(conn: asyncpg.Connection, stream: int, pos: int) -> asyncpg.Record | None:
    """The entry at position ``pos`` of a stream (None if there is none)."""
    return await _entry_at(conn, stream, pos)


async def _walk(conn: asyncpg.Connection, stream: int, start: tuple[int, str],
                head: tuple[int, str], anchors: Mapping[int, str], batch: int) -> Verdict:
    """One stream from ``start`` to its head, a batch of rows at a time."""
    part = None if stream == LEGACY else stream
    pos, prev = start
    checked = 0
    if pos > 0:
        row = await _entry_at(conn, stream, pos)
        if row is None or row["hash"] != prev:
            return Verdict(False, 0, row["seq"] if row else (pos if part is None else None),
                           str(row["event_id"]) if row else None,
                           row["complaint_id"] if row else None,
                           "an entry verified earlier was changed or deleted since",
                           part=part, part_seq=None if part is None else pos)
    while True:
        if part is None:
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM oversight.timeline"
                                    " WHERE part IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
                                    pos, batch)
        else:
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM oversight.timeline"
                                    " WHERE part = $1 AND part_seq > $2 ORDER BY part_seq"
                                    " LIMIT $3", part, pos, batch)
        last = len(rows) < batch
        verdict = check(rows, part=part, after=pos, after_hash=prev,
                        head=head if last else None, anchors=anchors)
        checked += verdict.checked
        if not verdict.ok or last:
            return dataclasses.replace(verdict, checked=checked)
        assert verdict.last_seq is not None and verdict.last_hash is not None
        pos, prev = verdict.last_seq, verdict.last_hash


async def verify(conn: asyncpg.Connection, batch: int = 2000, *, points: Points | None = None,
                 anchors: Mapping[int, Mapping[int, str]] | None = None) -> Verdict:
    """Walk every stream (the legacy chain, then partitions 0..63) from ``points``
    (stream -> (position, hash) verified before; by default the beginning) to its
    head, in one consistent snapshot, and return the first entry that does not hold.

    ``anchors`` (stream -> position -> signed hash, from checkpoints) must still
    match. A sound verdict carries the new points (``points``) and the number of
    entries checked across streams."""
    points = dict(points or {})
    anchors = anchors or {}
    checked = 0
    ends: dict[int, tuple[int, str]] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        all_heads = await heads(conn)
        legacy_end = (all_heads[0][1], all_heads[0][2])
        for stream, pos, digest in all_heads:
            genesis = GENESIS if stream == LEGACY else legacy_end[1]
            signed_start = anchors.get(stream, {}).get(0)
            if signed_start is not None and signed_start != genesis:
                return Verdict(False, checked, None, None, None,
                               "the signed start of this chain differs: the legacy chain"
                               " was rewritten", part=None if stream == LEGACY else stream,
                               part_seq=0)
            start = points.get(stream, (0, genesis))
            verdict = await _walk(conn, stream, start, (pos, digest),
                                  anchors.get(stream, {}), batch)
            checked += verdict.checked
            if not verdict.ok:
                return dataclasses.replace(verdict, checked=checked)
            assert verdict.last_seq is not None and verdict.last_hash is not None
            ends[stream] = (verdict.last_seq, verdict.last_hash)
    return Verdict(True, checked, last_seq=sum(p for p, _ in ends.values()), points=ends)
