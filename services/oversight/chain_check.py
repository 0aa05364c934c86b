"""The audit chain's rules as pure functions: how an entry is hashed, which partition
it belongs to, and whether a stream of entries holds (no database; see chain.py for
the design and the storage, tests/test_chain_check.py for the fast tests).

A *stream* is one hash chain: the closed legacy chain (``part`` None, positions are
the global ``seq``) or one partition (``part`` 0..PARTITIONS-1, positions are its
gap-free ``part_seq``). ``check`` walks one stream's entries in position order from a
known sound point and returns the first that does not hold, or where a sound walk
ended.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# Fixed for the life of the data: an entry's partition is part of its hash, and the
# migration made exactly this many head rows. 64 makes two busy complaints share a
# partition (and so wait on each other) rarely, and a checkpoint small (64 heads).
PARTITIONS = 64
NIL = str(uuid.UUID(int=0))


def partition_of(complaint_id: str, event_id: uuid.UUID | str) -> int:
    """The partition of an entry: a stable hash of its complaint, or of its own event
    id when it concerns no complaint (the nil id), so such entries spread too."""
    key = str(event_id) if complaint_id == NIL else complaint_id
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % PARTITIONS


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str, *, seq: int, complaint_id: str, event_id: uuid.UUID | str,
    event_type: str, producer: str, occurred_at: datetime, recorded_at: datetime,
    payload: Any, actor: str | None = None, part: int | None = None,
) -> str:
    """The hash of one entry, committing to ``prev_hash`` and every stored field.
    ``seq`` is the entry's position in its stream; ``part`` and ``actor`` are in the
    hashed JSON only when set, so legacy entries keep the hash they were written with."""
    fields: dict[str, Any] = {
        "seq": seq, "complaint_id": complaint_id, "event_id": str(event_id),
        "event_type": event_type, "producer": producer,
        "occurred_at": _ts(occurred_at), "recorded_at": _ts(recorded_at),
        "payload": payload,
    }
    if actor is not None:
        fields["actor"] = actor
    if part is not None:
        fields["part"] = part
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def heads_digest(heads: Iterable[tuple[int, int, str]]) -> str:
    """One hash over every stream head ``(part, position, hash)`` (legacy: part -1),
    in part order: what a checkpoint shows as its ``head_hash``."""
    body = json.dumps(sorted([list(h) for h in heads]), separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    event_id: str | None = None
    complaint_id: str | None = None
    reason: str | None = None
    # Where a sound walk of one stream ended (the next incremental walk starts there).
    last_seq: int | None = None
    last_hash: str | None = None
    part: int | None = None
    part_seq: int | None = None
    # After a sound walk of every stream: where each ended (stream -> position, hash).
    points: Mapping[int, tuple[int, str]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "checked": self.checked}
        if not self.ok:
            out["first_bad"] = {"seq": self.first_bad_seq, "event_id": self.event_id,
                                "complaint_id": self.complaint_id, "reason": self.reason,
                                "partition": self.part, "partition_seq": self.part_seq}
        return out


def _position(row: Mapping[str, Any], part: int | None) -> int:
    return int(row["seq"] if part is None else row["part_seq"])


def check(rows: Iterable[Mapping[str, Any]], *, part: int | None, after: int = 0,
          after_hash: str = GENESIS, head: tuple[int, str] | None,
          anchors: Mapping[int, str] | None = None) -> Verdict:
    """Walk one stream's ``rows`` (in position order, every one after position
    ``after``, whose hash is ``after_hash``) and return the first entry that does not
    hold, else a sound verdict ending at the stream's last entry.

    Each entry must: sit at the next position (no gap: nothing deleted or
    renumbered), belong to this stream (a partition entry's partition recomputes from
    its complaint), link to the previous entry's hash, have the hash its content
    recomputes to, and where ``anchors`` (position -> signed hash) names its position,
    still have that hash. The walk must end where ``head`` (position, hash) says (else
    the tail was cut), and no anchor may lie beyond the end; ``head`` None: ``rows``
    is a batch with more to come, so the end is not checked yet.
    """
    pending = dict(anchors or {})
    expected = after + 1
    prev = after_hash
    checked = 0
    for row in rows:
        pos = _position(row, part)

        def bad(reason: str, row: Mapping[str, Any] = row, pos: int = pos,
                checked: int = checked) -> Verdict:
            return Verdict(False, checked, int(row["seq"]), str(row["event_id"]),
                           row["complaint_id"], reason, part=part,
                           part_seq=None if part is None else pos)

        if pos != expected:
            return bad(f"sequence gap: expected {expected}, found {pos}"
                       " (entries deleted or renumbered)")
        if part is not None and (row["part"] != part or part != partition_of(
                row["complaint_id"], row["event_id"])):
            return bad("the entry is not in its complaint's partition (moved)")
        if row["prev_hash"] != prev:
            return bad("prev_hash does not match the previous entry's hash"
                       " (an entry before it was deleted, changed or reordered)")
        recomputed = entry_hash(
            row["prev_hash"], seq=pos, complaint_id=row["complaint_id"],
            event_id=row["event_id"], event_type=row["event_type"],
            producer=row["producer"], occurred_at=row["occurred_at"],
            recorded_at=row["recorded_at"], payload=row["payload"], actor=row["actor"],
            part=part,
        )
        if recomputed != row["hash"]:
            return bad("hash does not match the entry's content (entry altered)")
        signed = pending.pop(pos, None)
        if signed is not None and signed != row["hash"]:
            return bad(f"the entry's hash differs from the signed checkpoint at position"
                       f" {pos}: history at or before it was rewritten and the hashes"
                       " recomputed")
        prev = row["hash"]
        expected += 1
        checked += 1
    last = expected - 1
    if head is None:
        return Verdict(True, checked, last_seq=last, last_hash=prev, part=part)
    if head != (last, prev):
        return Verdict(False, checked, last + 1 if part is None else None, None, None,
                       f"chain head names entry {head[0]} but the chain ends at {last}"
                       " (newest entries deleted or head altered)",
                       part=part, part_seq=None if part is None else last + 1)
    beyond = sorted(s for s in pending if s > after)
    if beyond:
        return Verdict(False, checked, beyond[0] if part is None else None, None, None,
                       f"a signed checkpoint names entry {beyond[0]} but the chain ends at"
                       f" {last} (entries deleted)",
                       part=part, part_seq=None if part is None else beyond[0])
    return Verdict(True, checked, last_seq=last, last_hash=prev, part=part)
