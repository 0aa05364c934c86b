"""Helpers for the audit chain's tests: complaints placed in chosen partitions, the
pre-partition (legacy) chain as the old code wrote it, and a writer who rewrites an
entry and recomputes its partition's later hashes and head."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from services.oversight.chain_check import GENESIS, entry_hash, partition_of


def cid_in(part: int, avoid: set[str] | None = None) -> str:
    """A fresh complaint id whose entries go to partition ``part``."""
    while True:
        cid = uuid.uuid4().hex
        if partition_of(cid, "") == part and cid not in (avoid or set()):
            return cid


async def write_legacy(pool: asyncpg.Pool, n: int, complaint_id: str) -> None:
    """``n`` entries written the way the single global chain wrote them before the
    partitions (global gap-free seq, ``chain_head`` moved), then what migration 0501
    did: every partition starts from the legacy head. Only on an empty timeline."""
    async with pool.acquire() as conn, conn.transaction():
        prev = GENESIS
        now = datetime.now(UTC)
        for seq in range(1, n + 1):
            event_id = uuid.uuid4()
            payload = {"n": seq}
            digest = entry_hash(prev, seq=seq, complaint_id=complaint_id, event_id=event_id,
                                event_type="complaint.info_added", producer="intake",
                                occurred_at=now, recorded_at=now, payload=payload)
            await conn.execute(
                "INSERT INTO oversight.timeline (seq, complaint_id, event_id, event_type,"
                " producer, occurred_at, recorded_at, payload, prev_hash, hash)"
                " VALUES ($1, $2, $3, 'complaint.info_added', 'intake', $4, $4, $5::jsonb,"
                " $6, $7)", seq, complaint_id, event_id, now, payload, prev, digest)
            prev = digest
        await conn.execute("UPDATE oversight.chain_head SET last_seq = $1, last_hash = $2",
                           n, prev)
        await conn.execute("UPDATE oversight.chain_heads SET last_hash = $1", prev)
        await conn.execute("SELECT setval('oversight.timeline_seq', $1)", n)


async def rewrite_and_recompute(pool: asyncpg.Pool, seq: int) -> None:
    """What a writer with full database access does: change entry ``seq``, recompute
    its hash and every later one of its partition, and the partition's head (and the
    incremental verifier's remembered points), so the chain walk passes."""
    async with pool.acquire() as conn, conn.transaction():
        target = await conn.fetchrow("SELECT part, part_seq, prev_hash FROM oversight.timeline"
                                     " WHERE seq = $1", seq)
        part = target["part"]
        rows = await conn.fetch("SELECT * FROM oversight.timeline WHERE part = $1"
                                " AND part_seq >= $2 ORDER BY part_seq", part,
                                target["part_seq"])
        prev = target["prev_hash"]
        for row in rows:
            payload = row["payload"]
            if row["seq"] == seq:
                payload = dict(payload, agency="MDN-BKPSDM")  # the forged fact
            digest = entry_hash(prev, seq=row["part_seq"], complaint_id=row["complaint_id"],
                                event_id=row["event_id"], event_type=row["event_type"],
                                producer=row["producer"], occurred_at=row["occurred_at"],
                                recorded_at=row["recorded_at"], payload=payload,
                                actor=row["actor"], part=part)
            await conn.execute(
                "UPDATE oversight.timeline SET payload = $2::jsonb, prev_hash = $3, hash = $4"
                " WHERE seq = $1", row["seq"], payload, prev, digest)
            prev = digest
        await conn.execute("UPDATE oversight.chain_heads SET last_hash = $2 WHERE part = $1",
                           part, prev)
        # ...and the verifier's remembered point of that partition, to be thorough.
        await conn.execute(
            "UPDATE oversight.chain_verified SET points = jsonb_set(points, $1::text[],"
            " jsonb_build_array($2::bigint, $3::text)) WHERE points ? $4",
            [str(part)], rows[-1]["part_seq"], prev, str(part))
