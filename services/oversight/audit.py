"""Audit anchoring: signed checkpoints of the chain heads, and the public, incremental,
rate-limited verification.

A checkpoint (version 2, since the chain has partitions: services/oversight/chain.py)
is every head at a ``time``: ``heads``, the list of ``[stream, position, hash]`` (the
closed legacy chain as stream -1, then partitions 0..63), ``seq`` the number of
entries, ``head_hash`` the hash over the heads (``chain_check.heads_digest``). It is
signed with oversight's Ed25519 key over ``message()``: the bytes
``awasi.audit.checkpoint.v2``, a newline, and the canonical JSON (sorted keys, no
spaces) of ``algorithm``, ``head_hash``, ``heads``, ``key_id``, ``seq`` and ``time``.
Checkpoints made before the partitions (version 1: no ``heads``, domain
``awasi.audit.checkpoint.v1``, ``seq``/``head_hash`` the single chain's head) keep
verifying: they anchor the legacy chain. Anyone holding one can later check that each
entry it names still has its hash: a database writer who rewrites an entry and
recomputes every later hash of its partition and the stored head passes the chain
walk, but not the checkpoint (``verify_with_checkpoints``).

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
DOMAIN_V2 = b"awasi.audit.checkpoint.v2\n"
# The envelope needs a complaint id; a checkpoint concerns none.
NIL_COMPLAINT = str(uuid.UUID(int=0))
PRODUCER = "oversight"
JOB = "audit_checkpoint"


def time_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def message(*, seq: int, head_hash: str, time: str, key_id: str,
            algorithm: str = ALGORITHM, heads: list[list[Any]] | None = None) -> bytes:
    """The exact bytes a checkpoint's signature covers (version 2 when it has
    ``heads``, version 1 otherwise)."""
    fields: dict[str, Any] = {"algorithm": algorithm, "head_hash": head_hash,
                              "key_id": key_id, "seq": seq, "time": time}
    if heads is None:
        return DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    fields["heads"] = heads
    return DOMAIN_V2 + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _public(row: asyncpg.Record) -> dict[str, Any]:
    """A checkpoint as published and saved by anyone (an allow-list of fields)."""
    out = {"id": row["id"], "seq": row["seq"], "head_hash": row["head_hash"],
           "time": time_text(row["created_at"]), "key_id": row["key_id"],
           "algorithm": row["algorithm"], "signature": row["signature"],
           "public_key": row["public_key"]}
    if row["heads"] is not None:
        out["heads"] = row["heads"]
    return out


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
        # The committed heads: appends hold a head's row lock only inside their own
        # transaction, so these are heads whose entries are all visible.
        heads = [list(h) for h in await chain.heads(conn)]
        seq = sum(h[1] for h in heads)
        digest = chain.heads_digest(heads)
        at = now.astimezone(UTC)
        signature = key.sign(message(seq=seq, head_hash=digest, time=time_text(at),
                                     key_id=key.key_id, heads=heads))
        cp_id = await conn.fetchval(
            "INSERT INTO oversight.checkpoints (seq, head_hash, created_at, key_id,"
            " algorithm, signature, requested_by, heads)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING id",
            seq, digest, at, key.key_id, ALGORITHM, signature, requested_by, heads)
        row = await conn.fetchrow(_SELECT + " WHERE c.id = $1", cp_id)
        out = _public(row)
        await add_to_outbox(conn, "oversight", topics.AUDIT, Envelope.build(
            AuditCheckpoint(**{k: out[k] for k in ("seq", "head_hash", "time", "key_id",
                                                   "algorithm", "signature", "public_key",
                                                   "heads")}),
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

def _points_of(row: asyncpg.Record) -> dict[int, tuple[int, str]]:
    """The verified points stored (stream -> position, hash); before the partitions,
    the one point of the single chain, now the legacy stream."""
    if row["points"] is not None:
        return {int(k): (int(v[0]), str(v[1])) for k, v in row["points"].items()}
    return {chain.LEGACY: (row["seq"], row["hash"])}


async def verify_incremental(pool: asyncpg.Pool, now: datetime,
                             min_interval: timedelta) -> dict[str, Any]:
    """The public check: walk only the entries after the last verified points (one
    per stream), at most once per ``min_interval`` across every process; in between,
    answer the last verdict again. Returns ``{"ok", "checked", "from_seq",
    "verified_through", "checked_at", ...}`` (``from_seq``/``verified_through``: how
    many entries were verified before and after this walk) naming the first bad entry
    when not ok (then the points do not advance, so every later call names it again).
    """
    async with pool.acquire() as conn:
        # Claim the right to walk: one short UPDATE (its row lock makes a concurrent
        # claimer wait, then see the new checked_at and back off).
        claimed = await conn.fetchrow(
            "UPDATE oversight.chain_verified SET checked_at = $1"
            " WHERE checked_at IS NULL OR checked_at <= $2 OR verdict IS NULL"
            " RETURNING seq, hash, points", now, now - min_interval)
        if claimed is None:
            row = await conn.fetchrow(
                "SELECT verdict, checked_at FROM oversight.chain_verified")
            return {**row["verdict"], "cached": True}
        points = _points_of(claimed)
        before = sum(p for p, _ in points.values())
        verdict = await chain.verify(conn, points=points)
        out = {**verdict.to_json(), "from_seq": before,
               "verified_through": verdict.last_seq if verdict.ok else before,
               "checked_at": now.isoformat()}
        if verdict.ok:
            assert verdict.points is not None
            stored = {str(k): [p, h] for k, p_h in verdict.points.items()
                      for p, h in (p_h,)}
            legacy = verdict.points[chain.LEGACY]
            # seq: the number verified through, so a slower walker never moves it back.
            await conn.execute(
                "UPDATE oversight.chain_verified SET seq = $1, hash = $2, points = $3::jsonb,"
                " verdict = $4::jsonb WHERE seq <= $1 OR points IS NULL",
                verdict.last_seq, legacy[1], stored, out)
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
            heads = cp.get("heads")
            if heads is not None:
                heads = [[int(h[0]), int(h[1]), str(h[2])] for h in heads]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise BadCheckpoint(f"not a checkpoint: {e!r} missing or malformed") from e
        if algorithm != ALGORITHM:
            raise BadCheckpoint(f"unknown algorithm {algorithm}")
        try:
            if key_id_of(base64.b64decode(public_key, validate=True)) != key_id:
                raise BadCheckpoint(f"the public key does not have key id {key_id}")
        except (ValueError, binascii.Error) as e:
            raise BadCheckpoint("the public key is not base64") from e
        if not signature_valid(public_key, message(seq=seq, head_hash=head_hash, time=time,
                                                   key_id=key_id, heads=heads), signature):
            raise BadCheckpoint(f"the signature of the checkpoint at seq {seq} is not valid")
        if heads is not None and chain.heads_digest(heads) != head_hash:
            raise BadCheckpoint(f"the checkpoint at seq {seq}: head_hash is not its heads'")
        out.append({"seq": seq, "head_hash": head_hash, "time": time, "key_id": key_id,
                    "public_key": public_key, "heads": heads})
    if not out:
        raise BadCheckpoint("no checkpoint in the file")
    return sorted(out, key=lambda c: c["seq"])


def _anchors_of(cp: dict[str, Any]) -> list[tuple[int, int, str]]:
    """What a checkpoint vouches for: (stream, position, hash); version 1: the single
    chain's head, which is the legacy stream."""
    if cp.get("heads") is None:
        return [(chain.LEGACY, int(cp["seq"]), str(cp["head_hash"]))]
    return [(int(h[0]), int(h[1]), str(h[2])) for h in cp["heads"]]


async def verify_with_checkpoints(conn: asyncpg.Connection,
                                  checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """Walk the whole chain; each checkpoint's heads must still have the signed hashes.

    The checkpoints (from a file the caller trusts) also vouch for their keys. When one
    no longer matches, the rewrite happened after it was signed, so every checkpoint
    stored here that the same key signed before it covers the original history: in
    the stream (legacy chain or partition) of the mismatch, the newest one that still
    matches and the oldest one that does not bound the rewritten entry
    (``rewritten_between``, positions in that stream); when they are adjacent,
    ``first_bad`` is that entry. A writer who deleted the stored checkpoints only
    widens the range.
    """
    anchors: dict[int, dict[int, str]] = {}
    signed_at: dict[tuple[int, int], str] = {}
    for cp in checkpoints:
        for stream, pos, digest in _anchors_of(cp):
            mine = anchors.setdefault(stream, {})
            if mine.get(pos, digest) != digest:
                raise BadCheckpoint(f"two checkpoints disagree about entry {pos}"
                                    f" of chain {stream}")
            mine[pos] = digest
            signed_at.setdefault((stream, pos), cp["time"])
    if anchors.get(chain.LEGACY, {}).pop(0, chain.GENESIS) != chain.GENESIS:
        raise BadCheckpoint("a checkpoint of the empty chain must sign the genesis hash")
    verdict = await chain.verify(conn, anchors=anchors)
    out = verdict.to_json()
    out["checkpoints"] = len(checkpoints)
    stream = chain.LEGACY if verdict.part is None else verdict.part
    bad = verdict.first_bad_seq if verdict.part is None else verdict.part_seq
    mine = anchors.get(stream, {})
    if verdict.ok or bad is None or bad not in mine:
        return out
    detecting = signed_at[(stream, bad)]
    lo = max((s for s in mine if s < bad), default=0)
    hi = bad
    keys = {cp["key_id"]: cp["public_key"] for cp in checkpoints}
    rows = await conn.fetch(
        "SELECT seq, head_hash, created_at, key_id, signature, heads"
        " FROM oversight.checkpoints WHERE key_id = ANY($1::text[]) AND created_at <= $2",
        list(keys), datetime.fromisoformat(detecting))
    for r in rows:
        heads = r["heads"]
        signed = signature_valid(keys[r["key_id"]], message(
            seq=r["seq"], head_hash=r["head_hash"], time=time_text(r["created_at"]),
            key_id=r["key_id"], heads=heads), r["signature"])
        if not signed:
            continue  # not genuine: proves nothing either way
        for s_, pos, digest in _anchors_of({"seq": r["seq"], "head_hash": r["head_hash"],
                                            "heads": heads}):
            if s_ != stream or not lo < pos < hi:
                continue
            now = await chain.entry_at(conn, stream, pos)
            if now is not None and now["hash"] == digest:
                lo = max(lo, pos)
            else:
                hi = min(hi, pos)
    first_bad = out["first_bad"]
    first_bad["rewritten_between"] = [lo + 1, hi]
    if lo + 1 == hi:
        row = await chain.entry_at(conn, stream, hi)
        first_bad.update(
            seq=row["seq"] if row else None, event_id=str(row["event_id"]) if row else None,
            partition_seq=hi if stream != chain.LEGACY else None,
            complaint_id=row["complaint_id"] if row else None,
            reason=f"entry {hi} was rewritten and every later hash recomputed: the signed"
                   f" checkpoint of entry {lo} still matches, the one of entry {hi} does not")
    return out
