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
can be recomputed from the row as PostgreSQL returns it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
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
    payload: Any,
) -> str:
    """The hash of one entry, committing to ``prev_hash`` and every stored field."""
    body = json.dumps(
        {
            "seq": seq, "complaint_id": complaint_id, "event_id": str(event_id),
            "event_type": event_type, "producer": producer,
            "occurred_at": _ts(occurred_at), "recorded_at": _ts(recorded_at),
            "payload": payload,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


async def append(conn: asyncpg.Connection, envelope: Envelope, recorded_at: datetime) -> int:
    """Append ``envelope`` to the chain inside the caller's transaction; return its seq.

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
    )
    await conn.execute(
        "INSERT INTO oversight.timeline (seq, complaint_id, event_id, event_type, producer,"
        " occurred_at, recorded_at, payload, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
        seq, envelope.complaint_id, envelope.event_id, envelope.type, envelope.producer,
        envelope.occurred_at, recorded_at, payload, head["last_hash"], digest,
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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "checked": self.checked}
        if not self.ok:
            out["first_bad"] = {"seq": self.first_bad_seq, "event_id": self.event_id,
                                "complaint_id": self.complaint_id, "reason": self.reason}
        return out


async def verify(conn: asyncpg.Connection, batch: int = 2000) -> Verdict:
    """Walk the chain in seq order and return the first entry that does not match.

    Checks, for every entry: seq follows the previous one without a gap, prev_hash
    equals the previous entry's hash, and the hash recomputes from the row. Finally
    the last entry must be the one ``chain_head`` names (else the tail was cut).
    """
    expected_prev = GENESIS
    expected_seq = 1
    checked = 0
    head: asyncpg.Record | None = None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("SELECT last_seq, last_hash FROM oversight.chain_head")
        async for row in conn.cursor(
            "SELECT seq, complaint_id, event_id, event_type, producer, occurred_at,"
            " recorded_at, payload, prev_hash, hash FROM oversight.timeline ORDER BY seq",
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
                recorded_at=row["recorded_at"], payload=row["payload"],
            )
            if recomputed != row["hash"]:
                return bad("hash does not match the entry's content (entry altered)")
            expected_prev = row["hash"]
            expected_seq += 1
            checked += 1
    assert head is not None
    if head["last_seq"] != expected_seq - 1 or head["last_hash"] != expected_prev:
        return Verdict(False, checked, expected_seq, None, None,
                       f"chain head names entry {head['last_seq']} but the chain ends at"
                       f" {expected_seq - 1} (newest entries deleted or head altered)")
    return Verdict(True, checked)
