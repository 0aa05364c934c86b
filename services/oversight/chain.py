"""The tamper-evident timeline: one global hash chain over every case's events.

Why one global chain rather than one per case: a per-case chain detects edits inside
a case, but deleting a whole case (every entry of it) or swapping two cases leaves
every remaining chain valid. With one chain and a gap-free sequence number, each
entry commits to the one before it whatever the case, so deleting, editing or
reordering any row, including every row of one case, breaks the chain at that point.
The newest entry is also recorded in ``chain_head``, so cutting off the tail is
detected too.

Appends are serialised by the ``chain_head`` row lock (held to the end of the
consumer's transaction): the next append reads the committed head, so ``seq``
follows commit order and there are no gaps.

The hash of an entry is SHA-256 over the previous hash and a canonical JSON of the
entry's fields (sorted keys, no whitespace, UTC timestamps with microseconds), so it
can be recomputed from the row as PostgreSQL returns it. ``actor`` (the panel member
behind a claim, finding or reopening) is part of that JSON only when the entry has
one, so entries written before it existed keep their hash.

Verification comes in two shapes: ``verify`` walks the whole chain (the CLI), and
walks from a given verified point (the public endpoint, incrementally; see
``services.oversight.audit``). Either can be given signed checkpoints (``anchors``:
seq -> head hash) that the entry at that seq must still match: that is what catches
a writer who recomputed every hash and the stored head.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from awasi.events.envelope import Envelope

GENESIS = "0" * 64


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str, *, seq: int, complaint_id: str, event_id: uuid.UUID | str,
    event_type: str, producer: str, occurred_at: datetime, recorded_at: datetime,
    payload: Any, actor: str | None = None,
) -> str:
    """The hash of one entry, committing to ``prev_hash`` and every stored field."""
    fields: dict[str, Any] = {
        "seq": seq, "complaint_id": complaint_id, "event_id": str(event_id),
        "event_type": event_type, "producer": producer,
        "occurred_at": _ts(occurred_at), "recorded_at": _ts(recorded_at),
        "payload": payload,
    }
    if actor is not None:
        fields["actor"] = actor
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


async def lock_head(conn: asyncpg.Connection) -> None:
    """Take the chain head's row lock now, for a transaction that will append and
    also lock a case: the consumer takes the head (in ``append``) before the case, so
    every such transaction must too, or the two could wait on each other."""
    await conn.execute("SELECT 1 FROM oversight.chain_head FOR UPDATE")


async def append(conn: asyncpg.Connection, envelope: Envelope, recorded_at: datetime,
                 actor: str | None = None) -> int:
    """Append ``envelope`` (and the person who acted, if any) to the chain inside the
    caller's transaction; return its seq.

    Locks the chain head until the transaction ends (appends are serial by design).
    """
    head = await conn.fetchrow(
        "SELECT last_seq, last_hash FROM oversight.chain_head FOR UPDATE"
    )
    seq = head["last_seq"] + 1
    # Normalise the payload through JSON, as jsonb will hand it back.
    payload = json.loads(json.dumps(envelope.payload))
    digest = entry_hash(
        head["last_hash"], seq=seq, complaint_id=envelope.complaint_id,
        event_id=envelope.event_id, event_type=envelope.type, producer=envelope.producer,
        occurred_at=envelope.occurred_at, recorded_at=recorded_at, payload=payload,
        actor=actor,
    )
    await conn.execute(
        "INSERT INTO oversight.timeline (seq, complaint_id, event_id, event_type, producer,"
        " occurred_at, recorded_at, payload, prev_hash, hash, actor)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)",
        seq, envelope.complaint_id, envelope.event_id, envelope.type, envelope.producer,
        envelope.occurred_at, recorded_at, payload, head["last_hash"], digest, actor,
    )
    await conn.execute(
        "UPDATE oversight.chain_head SET last_seq = $1, last_hash = $2", seq, digest
    )
    return seq


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    event_id: str | None = None
    complaint_id: str | None = None
    reason: str | None = None
    # Where a sound walk ended (the next incremental walk starts there).
    last_seq: int | None = None
    last_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "checked": self.checked}
        if not self.ok:
            out["first_bad"] = {"seq": self.first_bad_seq, "event_id": self.event_id,
                                "complaint_id": self.complaint_id, "reason": self.reason}
        return out


async def verify(
    conn: asyncpg.Connection, batch: int = 2000, *, after_seq: int = 0,
    after_hash: str = GENESIS, anchors: Mapping[int, str] | None = None,
) -> Verdict:
    """Walk the chain in seq order from ``after_seq`` (whose hash must still be
    ``after_hash``; 0 and the genesis hash: the whole chain) and return the first
    entry that does not match.

    Checks, for every entry: seq follows the previous one without a gap, prev_hash
    equals the previous entry's hash, the hash recomputes from the row, and where
    ``anchors`` holds a signed hash for that seq, the entry still has it. Finally the
    last entry must be the one ``chain_head`` names (else the tail was cut), and no
    anchor may lie beyond it.
    """
    anchors = dict(anchors or {})
    expected_prev = after_hash
    expected_seq = after_seq + 1
    checked = 0
    head: asyncpg.Record | None = None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("SELECT last_seq, last_hash FROM oversight.chain_head")
        if after_seq > 0:
            start = await conn.fetchrow(
                "SELECT seq, event_id, complaint_id, hash FROM oversight.timeline"
                " WHERE seq = $1", after_seq)
            if start is None or start["hash"] != after_hash:
                return Verdict(False, 0, after_seq,
                               str(start["event_id"]) if start else None,
                               start["complaint_id"] if start else None,
                               "an entry verified earlier was changed or deleted since")
        async for row in conn.cursor(
            "SELECT seq, complaint_id, event_id, event_type, producer, occurred_at,"
            " recorded_at, payload, prev_hash, hash, actor FROM oversight.timeline"
            " WHERE seq > $1 ORDER BY seq", after_seq,
            prefetch=batch,
        ):
            def bad(reason: str, row: asyncpg.Record = row, checked: int = checked) -> Verdict:
                return Verdict(False, checked, row["seq"], str(row["event_id"]),
                               row["complaint_id"], reason)

            if row["seq"] != expected_seq:
                return bad(f"sequence gap: expected {expected_seq}, found {row['seq']}"
                           " (entries deleted or renumbered)")
            if row["prev_hash"] != expected_prev:
                return bad("prev_hash does not match the previous entry's hash"
                           " (an entry before it was deleted, changed or reordered)")
            recomputed = entry_hash(
                row["prev_hash"], seq=row["seq"], complaint_id=row["complaint_id"],
                event_id=row["event_id"], event_type=row["event_type"],
                producer=row["producer"], occurred_at=row["occurred_at"],
                recorded_at=row["recorded_at"], payload=row["payload"], actor=row["actor"],
            )
            if recomputed != row["hash"]:
                return bad("hash does not match the entry's content (entry altered)")
            signed = anchors.pop(row["seq"], None)
            if signed is not None and signed != row["hash"]:
                return bad(f"the entry's hash differs from the signed checkpoint at seq"
                           f" {row['seq']}: history at or before it was rewritten and"
                           " the hashes recomputed")
            expected_prev = row["hash"]
            expected_seq += 1
            checked += 1
    assert head is not None
    if head["last_seq"] != expected_seq - 1 or head["last_hash"] != expected_prev:
        return Verdict(False, checked, expected_seq, None, None,
                       f"chain head names entry {head['last_seq']} but the chain ends at"
                       f" {expected_seq - 1} (newest entries deleted or head altered)")
    beyond = sorted(s for s in anchors if s > after_seq)
    if beyond:
        return Verdict(False, checked, beyond[0], None, None,
                       f"a signed checkpoint names entry {beyond[0]} but the chain ends at"
                       f" {expected_seq - 1} (entries deleted)")
    return Verdict(True, checked, last_seq=expected_seq - 1, last_hash=expected_prev)
