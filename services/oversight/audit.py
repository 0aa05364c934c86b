"""Audit anchoring: signed checkpoints of the chain head, and the public, incremental,
rate-limited verification.

A checkpoint is the chain head (``seq``, ``head_hash``) at a ``time``, signed with
oversight's Ed25519 key over ``message()``: the bytes ``awasi.audit.checkpoint.v1``,
a newline, and the canonical JSON (sorted keys, no spaces) of ``algorithm``,
``head_hash``, ``key_id``, ``seq`` and ``time``. Anyone holding one can later check
that the entry at ``seq`` still has that hash: a database writer who rewrites an
entry and recomputes every later hash and the stored head passes the chain walk, but
not the checkpoint (``verify_with_checkpoints``).

Checkpoints are made by the scheduler when the ``audit_checkpoint`` job falls due
(``oversight.jobs``, claimed with SKIP LOCKED like deadlines; the interval is
``AWASI_AUDIT_CHECKPOINT_INTERVAL_S``), and on demand by a panel member or
``awasi audit checkpoint``. Each one also goes out as ``audit.checkpoint`` on the
topic ``awasi.audit.v1``, keyed by the nil UUID (a checkpoint is about no complaint).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from awasi.events import topics
from awasi.events.envelope import Envelope
from awasi.events.outbox import add_to_outbox
from awasi.events.payloads import AuditCheckpoint
from services.oversight import chain
from services.oversight.audit_key import ALGORITHM, SigningKey, key_id_of, signature_valid

DOMAIN = b"awasi.audit.checkpoint.v1\n"
# The envelope needs a complaint id; a checkpoint concerns none.
NIL_COMPLAINT = str(uuid.UUID(int=0))
PRODUCER = "oversight"
JOB = "audit_checkpoint"


def time_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def message(*, seq: int, head_hash: str, time: str, key_id: str,
            algorithm: str = ALGORITHM) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    body = json.dumps({"algorithm": algorithm, "head_hash": head_hash, "key_id": key_id,
                       "seq": seq, "time": time}, sort_keys=True, separators=(",", ":"))
    return DOMAIN + body.encode()


def _public(row: asyncpg.Record) -> dict[str, Any]:
    """A checkpoint as published and saved by anyone (an allow-list of fields)."""
    return {"id": row["id"], "seq": row["seq"], "head_hash": row["head_hash"],
            "time": time_text(row["created_at"]), "key_id": row["key_id"],
            "algorithm": row["algorithm"], "signature": row["signature"],
            "public_key": row["public_key"]}


_SELECT = ("SELECT c.*, k.public_key FROM oversight.checkpoints c"
           " JOIN oversight.signing_keys k USING (key_id)")


async def register_key(conn: asyncpg.Connection, key: SigningKey, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO oversight.signing_keys (key_id, algorithm, public_key, first_used)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING",
        key.key_id, ALGORITHM, key.public_b64, now)


async def make_checkpoint(conn: asyncpg.Connection, key: SigningKey, now: datetime,
                          requested_by: str | None = None) -> dict[str, Any]:
    """Sign the committed chain head, store it and put ``audit.checkpoint`` in the
    outbox, in one transaction (the caller's, if it has one). Returns the checkpoint."""
    async with conn.transaction():
        await register_key(conn, key, now)
        # The committed head: appends hold its row lock only inside their own
        # transaction, so this reads a head whose entries are all visible.
        head = await conn.fetchrow("SELECT last_seq, last_hash FROM oversight.chain_head")
        at = now.astimezone(UTC)
        signature = key.sign(message(seq=head["last_seq"], head_hash=head["last_hash"],
                                     time=time_text(at), key_id=key.key_id))
        cp_id = await conn.fetchval(
            "INSERT INTO oversight.checkpoints (seq, head_hash, created_at, key_id,"
            " algorithm, signature, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING id",
            head["last_seq"], head["last_hash"], at, key.key_id, ALGORITHM, signature,
            requested_by)
        row = await conn.fetchrow(_SELECT + " WHERE c.id = $1", cp_id)
        out = _public(row)
        await add_to_outbox(conn, "oversight", topics.AUDIT, Envelope.build(
            AuditCheckpoint(**{k: out[k] for k in ("seq", "head_hash", "time", "key_id",
                                                   "algorithm", "signature", "public_key")}),
            complaint_id=NIL_COMPLAINT, producer=PRODUCER, occurred_at=at))
    return out


async def checkpoint_if_due(conn: asyncpg.Connection, key: SigningKey, now: datetime,
                            interval: timedelta) -> dict[str, Any] | None:
    """Make the scheduled checkpoint if its job is due; None if not (or another
    process holds the job right now)."""
    async with conn.transaction():
        due = await conn.fetchval(
            "SELECT 1 FROM oversight.jobs WHERE name = $1 AND next_at <= $2"
            " FOR UPDATE SKIP LOCKED", JOB, now)
        if not due:
            return None
        out = await make_checkpoint(conn, key, now)
        await conn.execute("UPDATE oversight.jobs SET next_at = $2 WHERE name = $1",
                           JOB, now + interval)
    return out


async def latest(conn: asyncpg.Connection) -> dict[str, Any] | None:
    row = await conn.fetchrow(_SELECT + " ORDER BY c.id DESC LIMIT 1")
    return _public(row) if row else None


async def listing(conn: asyncpg.Connection, before: int | None,
                  limit: int) -> list[dict[str, Any]]:
    """Checkpoints newest first, a keyset page (``before``: an id from the last page)."""
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::bigint IS NULL OR c.id < $1) ORDER BY c.id DESC LIMIT $2",
        before, limit)
    return [_public(r) for r in rows]


async def public_keys(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT key_id, algorithm, public_key, first_used FROM oversight.signing_keys"
        " ORDER BY first_used, key_id")
    return [{"key_id": r["key_id"], "algorithm": r["algorithm"],
             "public_key": r["public_key"], "first_used": r["first_used"].isoformat()}
            for r in rows]


# --- verification ---------------------------------------------------------------------

async def verify_incremental(pool: asyncpg.Pool, now: datetime,
                             min_interval: timedelta) -> dict[str, Any]:
    """The public check: walk only the entries after the last verified point, at most
    once per ``min_interval`` across every process; in between, answer the last
    verdict again. Returns ``{"ok", "checked", "verified_through", "checked_at", ...}``
    naming the first bad entry when not ok (then the point does not advance, so
    every later call names it again).
    """
    async with pool.acquire() as conn:
        # Claim the right to walk: one short UPDATE (its row lock makes a concurrent
        # claimer wait, then see the new checked_at and back off).
        claimed = await conn.fetchrow(
            "UPDATE oversight.chain_verified SET checked_at = $1"
            " WHERE checked_at IS NULL OR checked_at <= $2 OR verdict IS NULL"
            " RETURNING seq, hash", now, now - min_interval)
        if claimed is None:
            row = await conn.fetchrow(
                "SELECT verdict, checked_at FROM oversight.chain_verified")
            return {**row["verdict"], "cached": True}
        verdict = await chain.verify(conn, after_seq=claimed["seq"],
                                     after_hash=claimed["hash"])
        out = {**verdict.to_json(), "from_seq": claimed["seq"],
               "verified_through": verdict.last_seq if verdict.ok else claimed["seq"],
               "checked_at": now.isoformat()}
        if verdict.ok:
            await conn.execute(
                "UPDATE oversight.chain_verified SET seq = $1, hash = $2, verdict = $3::jsonb"
                " WHERE seq <= $1", verdict.last_seq, verdict.last_hash, out)
        else:
            await conn.execute("UPDATE oversight.chain_verified SET verdict = $1::jsonb", out)
    return {**out, "cached": False}


class BadCheckpoint(ValueError):
    """A checkpoint file that is not a genuine, well-formed checkpoint."""


def parse_checkpoints(data: Any) -> list[dict[str, Any]]:
    """Accept one checkpoint, a list of them, or ``{"checkpoints": [...]}`` (what
    ``GET /api/v1/audit/checkpoints`` answers). Check each signature with the public
    key it carries (whose id must be its key id). Raise ``BadCheckpoint`` otherwise."""
    items: Iterable[Any]
    if isinstance(data, dict) and "checkpoints" in data:
        items = data["checkpoints"]
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise BadCheckpoint("not a checkpoint: expected a JSON object or list")
    out = []
    for cp in items:
        try:
            seq, head_hash, time = int(cp["seq"]), str(cp["head_hash"]), str(cp["time"])
            key_id, algorithm = str(cp["key_id"]), str(cp["algorithm"])
            signature, public_key = str(cp["signature"]), str(cp["public_key"])
        except (KeyError, TypeError, ValueError) as e:
            raise BadCheckpoint(f"not a checkpoint: {e!r} missing or malformed") from e
        if algorithm != ALGORITHM:
            raise BadCheckpoint(f"unknown algorithm {algorithm}")
        try:
            if key_id_of(base64.b64decode(public_key, validate=True)) != key_id:
                raise BadCheckpoint(f"the public key does not have key id {key_id}")
        except (ValueError, binascii.Error) as e:
            raise BadCheckpoint("the public key is not base64") from e
        if not signature_valid(public_key, message(seq=seq, head_hash=head_hash, time=time,
                                                   key_id=key_id), signature):
            raise BadCheckpoint(f"the signature of the checkpoint at seq {seq} is not valid")
        out.append({"seq": seq, "head_hash": head_hash, "time": time, "key_id": key_id,
                    "public_key": public_key})
    if not out:
        raise BadCheckpoint("no checkpoint in the file")
    return sorted(out, key=lambda c: c["seq"])


async def verify_with_checkpoints(conn: asyncpg.Connection,
                                  checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """Walk the whole chain; each checkpoint's entry must still have the signed hash.

    The checkpoints (from a file the caller trusts) also vouch for their keys. When one
    no longer matches, the rewrite happened after it was signed, so every checkpoint
    stored here that the same key signed before it covers the original history: the
    newest one that still matches and the oldest one that does not bound the rewritten
    entry (``rewritten_between``); when they are adjacent, ``first_bad`` is that entry.
    A writer who deleted the stored checkpoints only widens the range.
    """
    anchors: dict[int, str] = {}
    for cp in checkpoints:
        if anchors.get(cp["seq"], cp["head_hash"]) != cp["head_hash"]:
            raise BadCheckpoint(f"two checkpoints disagree about entry {cp['seq']}")
        anchors[cp["seq"]] = cp["head_hash"]
    if anchors.pop(0, chain.GENESIS) != chain.GENESIS:
        raise BadCheckpoint("a checkpoint of the empty chain must sign the genesis hash")
    verdict = await chain.verify(conn, anchors=anchors)
    out = verdict.to_json()
    out["checkpoints"] = len(checkpoints)
    bad = verdict.first_bad_seq
    if verdict.ok or bad not in anchors:
        return out
    detecting = next(cp for cp in checkpoints if cp["seq"] == bad)
    lo = max((s for s in anchors if s < bad), default=0)
    hi = bad
    keys = {cp["key_id"]: cp["public_key"] for cp in checkpoints}
    rows = await conn.fetch(
        "SELECT c.seq, c.head_hash, c.created_at, c.key_id, c.signature, t.hash AS now"
        " FROM oversight.checkpoints c LEFT JOIN oversight.timeline t ON t.seq = c.seq"
        " WHERE c.key_id = ANY($1::text[]) AND c.seq > $2 AND c.seq < $3"
        " AND c.created_at <= $4",
        list(keys), lo, hi, datetime.fromisoformat(detecting["time"]))
    for r in rows:
        signed = signature_valid(keys[r["key_id"]], message(
            seq=r["seq"], head_hash=r["head_hash"], time=time_text(r["created_at"]),
            key_id=r["key_id"]), r["signature"])
        if not signed:
            continue  # not genuine: proves nothing either way
        if r["now"] == r["head_hash"]:
            lo = max(lo, r["seq"])
        else:
            hi = min(hi, r["seq"])
    first_bad = out["first_bad"]
    first_bad["rewritten_between"] = [lo + 1, hi]
    if lo + 1 == hi:
        row = await conn.fetchrow(
            "SELECT seq, event_id, complaint_id FROM oversight.timeline WHERE seq = $1", hi)
        first_bad.update(
            seq=hi, event_id=str(row["event_id"]) if row else None,
            complaint_id=row["complaint_id"] if row else None,
            reason=f"entry {hi} was rewritten and every later hash recomputed: the signed"
                   f" checkpoint of entry {lo} still matches, the one of entry {hi} does not")
    return out
