"""The audit chain's verification rules, pure (services/oversight/chain_check.py): no
database, milliseconds. These are the tests mutmut runs against that module
(docs/TESTING.md, "Mutation testing"); tests/test_audit_chain.py checks the same
rules against real rows in PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.oversight.chain_check import (
    GENESIS,
    NIL,
    PARTITIONS,
    Verdict,
    check,
    entry_hash,
    heads_digest,
    partition_of,
)

T = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)
WIB = timezone(timedelta(hours=7))


def cid_in(part: int, n: int = 0) -> str:
    """The n-th of the ids c0, c1, ... that falls in partition ``part``."""
    found = (f"c{i}" for i in range(100_000) if partition_of(f"c{i}", "") == part)
    for _ in range(n):
        next(found)
    return next(found)


def rows(part: int | None, n: int, start: tuple[int, str] = (0, GENESIS),
         cids: list[str] | None = None) -> list[dict[str, Any]]:
    """A sound stream of ``n`` entries after ``start`` (legacy when ``part`` is None)."""
    cids = cids or [cid_in(part) if part is not None else "legacy-case"]
    out = []
    pos, prev = start
    for i in range(n):
        pos += 1
        cid = cids[i % len(cids)]
        row = {"seq": 100 + pos if part is not None else pos, "part": part,
               "part_seq": pos if part is not None else None, "complaint_id": cid,
               "event_id": f"e{pos}", "event_type": "complaint.submitted",
               "producer": "intake", "occurred_at": T, "recorded_at": T,
               "payload": {"n": pos}, "actor": "pengawas" if pos == 2 else None,
               "prev_hash": prev}
        row["hash"] = entry_hash(prev, seq=pos, complaint_id=cid, event_id=row["event_id"],
                                 event_type=row["event_type"], producer=row["producer"],
                                 occurred_at=T, recorded_at=T, payload=row["payload"],
                                 actor=row["actor"], part=part)
        prev = row["hash"]
        out.append(row)
    return out


def head_of(stream: list[dict[str, Any]], part: int | None = 3) -> tuple[int, str]:
    last = stream[-1]
    return (last["seq"] if part is None else last["part_seq"], last["hash"])


# --- hashing -------------------------------------------------------------------------

def test_genesis_is_sixty_four_zeros() -> None:
    assert GENESIS == "0" * 64


def test_entry_hash_is_sha256_of_prev_and_canonical_json() -> None:
    payload = {"b": 1, "a": "Jalan Gatot Subroto – ä"}
    body = ('{"complaint_id":"c1","event_id":"e1","event_type":"complaint.submitted",'
            '"occurred_at":"2026-11-23T02:00:00.123456+00:00","payload":{"a":"Jalan Gatot'
            ' Subroto – ä","b":1},"producer":"intake",'
            '"recorded_at":"2026-11-23T02:00:00.123456+00:00","seq":1}')
    expected = hashlib.sha256(f"{GENESIS}\n{body}".encode()).hexdigest()
    got = entry_hash(GENESIS, seq=1, complaint_id="c1", event_id="e1",
                     event_type="complaint.submitted", producer="intake", occurred_at=T,
                     recorded_at=T, payload=payload)
    assert got == expected == "99ac32963a910de87018e053c3fc43ddd88bec414471719cc76048acdd844036"


def test_entry_hash_covers_actor_and_part_only_when_set() -> None:
    base = dict(seq=1, complaint_id="c1", event_id="e1", event_type="complaint.submitted",
                producer="intake", occurred_at=T, recorded_at=T, payload={"b": 1, "a": "x"})
    assert entry_hash(GENESIS, **base, actor="pengawas", part=7) == \
        "5b1730c3772637c533fd5ed511c8e2955ebdf0306fb958157400ef0c399929e4"
    plain = entry_hash(GENESIS, **base)
    assert entry_hash(GENESIS, **base, actor=None, part=None) == plain
    with_actor = entry_hash(GENESIS, **base, actor="pengawas")
    with_part = entry_hash(GENESIS, **base, part=7)
    assert len({plain, with_actor, with_part, entry_hash(GENESIS, **base, part=0)}) == 4


def test_entry_hash_commits_to_every_field() -> None:
    base: dict[str, Any] = dict(seq=1, complaint_id="c1", event_id=uuid.UUID(int=5),
                                event_type="t", producer="p", occurred_at=T, recorded_at=T,
                                payload={"a": 1}, actor="x", part=1)
    first = entry_hash(GENESIS, **base)
    assert entry_hash(GENESIS, **dict(base, event_id=str(uuid.UUID(int=5)))) == first
    changes = {"seq": 2, "complaint_id": "c2", "event_id": "e2", "event_type": "u",
               "producer": "q", "occurred_at": T + timedelta(microseconds=1),
               "recorded_at": T + timedelta(microseconds=1), "payload": {"a": 2},
               "actor": "y", "part": 2}
    for name, value in changes.items():
        assert entry_hash(GENESIS, **dict(base, **{name: value})) != first, name
    assert entry_hash("1" * 64, **base) != first


def test_entry_hash_reads_time_as_the_same_instant_in_any_zone() -> None:
    base = dict(seq=1, complaint_id="c1", event_id="e1", event_type="t", producer="p",
                payload={})
    assert entry_hash(GENESIS, **base, occurred_at=T.astimezone(WIB),
                      recorded_at=T.astimezone(WIB)) == \
        entry_hash(GENESIS, **base, occurred_at=T, recorded_at=T)


# --- partitions and heads ------------------------------------------------------------

def test_partition_of_is_a_stable_hash_of_the_complaint() -> None:
    assert PARTITIONS == 64
    assert [partition_of(c, "e") for c in ("a", "b", "c", "d")] == [10, 10, 34, 9]
    assert partition_of("a", "e") == partition_of("a", "other event")
    assert partition_of("c0", "") == int.from_bytes(
        hashlib.sha256(b"c0").digest()[:8], "big") % 64


def test_entries_about_no_complaint_spread_by_their_event_id() -> None:
    assert NIL == "00000000-0000-0000-0000-000000000000"
    assert (partition_of(NIL, "e1"), partition_of(NIL, "e2")) == (50, 58)
    assert partition_of(NIL, uuid.UUID(int=1)) == partition_of(NIL, str(uuid.UUID(int=1)))


def test_every_partition_is_used() -> None:
    seen = {partition_of(f"c{i}", "") for i in range(2000)}
    assert seen == set(range(PARTITIONS))


def test_heads_digest_is_order_free_and_exact() -> None:
    heads = [(0, 1, "h"), (-1, 0, GENESIS)]
    body = json.dumps([[-1, 0, GENESIS], [0, 1, "h"]], separators=(",", ":"))
    assert heads_digest(heads) == hashlib.sha256(body.encode()).hexdigest() == \
        "c6c0396de5e4e18ec3232f8b4e94363ab612139c82275e4ffa7761e9715c0d4f"
    assert heads_digest(reversed(heads)) == heads_digest(heads)
    assert heads_digest([(0, 2, "h"), (-1, 0, GENESIS)]) != heads_digest(heads)


# --- verdicts ------------------------------------------------------------------------

def test_verdict_json_names_the_first_bad_entry_only_when_not_ok() -> None:
    assert Verdict(True, 3, last_seq=3, last_hash="h").to_json() == {"ok": True, "checked": 3}
    bad = Verdict(False, 2, 7, "e7", "c1", "why", part=4, part_seq=3)
    assert bad.to_json() == {"ok": False, "checked": 2, "first_bad": {
        "seq": 7, "event_id": "e7", "complaint_id": "c1", "reason": "why",
        "partition": 4, "partition_seq": 3}}


# --- walking a stream ----------------------------------------------------------------

@pytest.mark.parametrize("part", [None, 3])
def test_a_sound_stream_holds(part: int | None) -> None:
    stream = rows(part, 4)
    verdict = check(stream, part=part, head=head_of(stream, part))
    assert verdict == Verdict(True, 4, last_seq=4, last_hash=stream[-1]["hash"], part=part)


def test_an_empty_stream_holds_at_its_start() -> None:
    assert check([], part=3, head=(0, GENESIS)) == Verdict(True, 0, last_seq=0,
                                                           last_hash=GENESIS, part=3)
    assert check([], part=None, after=5, after_hash="h", head=(5, "h")).ok
    assert not check([], part=None, after=5, after_hash="h", head=(5, "g")).ok


def test_a_batch_with_more_to_come_does_not_check_the_end() -> None:
    stream = rows(3, 3)
    assert check(stream, part=3, head=None, anchors={9: "x"}) == Verdict(
        True, 3, last_seq=3, last_hash=stream[-1]["hash"], part=3)


def test_a_walk_resumes_from_a_verified_point() -> None:
    stream = rows(3, 5)
    verdict = check(stream[2:], part=3, after=2, after_hash=stream[1]["hash"],
                    head=head_of(stream))
    assert (verdict.ok, verdict.checked, verdict.last_seq) == (True, 3, 5)
    # The point's hash is what the next entry must link to.
    assert not check(stream[2:], part=3, after=2, after_hash=stream[0]["hash"],
                     head=head_of(stream)).ok


def test_a_gap_is_named_at_the_entry_after_it() -> None:
    stream = rows(3, 4)
    del stream[1]
    verdict = check(stream, part=3, head=head_of(stream))
    assert verdict == Verdict(False, 1, 103, "e3", stream[1]["complaint_id"],
                              "sequence gap: expected 2, found 3 (entries deleted or"
                              " renumbered)", part=3, part_seq=3)


def test_a_legacy_gap_names_the_global_seq() -> None:
    stream = rows(None, 3)
    verdict = check([stream[0], stream[2]], part=None, head=head_of(stream, None))
    assert verdict == Verdict(False, 1, 3, "e3", "legacy-case",
                              "sequence gap: expected 2, found 3 (entries deleted or"
                              " renumbered)", part=None, part_seq=None)


def test_an_entry_in_the_wrong_partition_is_named() -> None:
    stream = rows(3, 3)
    stream[1]["part"] = 4
    moved = "the entry is not in its complaint's partition (moved)"
    assert check(stream, part=3, head=head_of(stream)) == Verdict(
        False, 1, 102, "e2", stream[1]["complaint_id"], moved, part=3, part_seq=2)
    # Labelled with the right partition but the complaint belongs to another.
    other = rows(3, 3, cids=[cid_in(3), cid_in(5)])
    assert check(other, part=3, head=head_of(other)).reason == moved
    # The legacy chain has no partitions to check.
    legacy = rows(None, 2, cids=[cid_in(5)])
    assert check(legacy, part=None, head=head_of(legacy, None)).ok


def test_a_broken_link_is_named() -> None:
    stream = rows(3, 3)
    stream[2]["prev_hash"] = "f" * 64
    verdict = check(stream, part=3, head=head_of(stream))
    assert verdict == Verdict(False, 2, 103, "e3", stream[2]["complaint_id"],
                              "prev_hash does not match the previous entry's hash (an entry"
                              " before it was deleted, changed or reordered)",
                              part=3, part_seq=3)


def test_an_altered_entry_is_named() -> None:
    for field, value in (("payload", {"n": 99}), ("event_type", "x"), ("producer", "x"),
                         ("complaint_id", "zzz"), ("actor", "orang_lain"),
                         ("occurred_at", T + timedelta(seconds=1)),
                         ("recorded_at", T + timedelta(seconds=1)), ("event_id", "e9")):
        stream = rows(None, 3)
        stream[1][field] = value
        verdict = check(stream, part=None, head=head_of(stream, None))
        assert verdict == Verdict(False, 1, 2, str(stream[1]["event_id"]),
                                  stream[1]["complaint_id"], "hash does not match the"
                                  " entry's content (entry altered)"), field


def test_a_renumbered_entry_is_altered_even_with_its_neighbours_renumbered() -> None:
    stream = rows(3, 2)
    stream[0]["part_seq"], stream[1]["part_seq"] = 2, 3
    assert check(stream, part=3, after=1, after_hash=GENESIS, head=(3, stream[1]["hash"])
                 ).reason == "hash does not match the entry's content (entry altered)"


def test_signed_anchors_must_still_match() -> None:
    stream = rows(3, 4)
    good = {2: stream[1]["hash"], 4: stream[3]["hash"]}
    assert check(stream, part=3, head=head_of(stream), anchors=good).ok
    verdict = check(stream, part=3, head=head_of(stream), anchors={3: "a" * 64})
    assert verdict == Verdict(False, 2, 103, "e3", stream[2]["complaint_id"],
                              "the entry's hash differs from the signed checkpoint at"
                              " position 3: history at or before it was rewritten and the"
                              " hashes recomputed", part=3, part_seq=3)
    # The caller's mapping is left as it was.
    anchors = dict(good)
    check(stream, part=3, head=head_of(stream), anchors=anchors)
    assert anchors == good


def test_a_cut_tail_is_named_against_the_head() -> None:
    stream = rows(3, 4)
    verdict = check(stream[:2], part=3, head=head_of(stream))
    assert verdict == Verdict(False, 2, None, None, None,
                              "chain head names entry 4 but the chain ends at 2 (newest"
                              " entries deleted or head altered)", part=3, part_seq=3)
    legacy = rows(None, 4)
    verdict = check(legacy[:2], part=None, head=head_of(legacy, None))
    assert (verdict.ok, verdict.first_bad_seq, verdict.part_seq) == (False, 3, None)
    # Same length, other hash: the head was altered.
    assert not check(stream, part=3, head=(4, "b" * 64)).ok


def test_an_anchor_beyond_the_end_is_named() -> None:
    stream = rows(3, 2)
    verdict = check(stream, part=3, head=head_of(stream), anchors={5: "x", 4: "y"})
    assert verdict == Verdict(False, 2, None, None, None,
                              "a signed checkpoint names entry 4 but the chain ends at 2"
                              " (entries deleted)", part=3, part_seq=4)
    legacy = rows(None, 2)
    verdict = check(legacy, part=None, head=head_of(legacy, None), anchors={3: "x"})
    assert (verdict.ok, verdict.first_bad_seq, verdict.part_seq) == (False, 3, None)


def test_anchors_at_or_before_the_start_are_not_walked_again() -> None:
    stream = rows(3, 4)
    verdict = check(stream[2:], part=3, after=2, after_hash=stream[1]["hash"],
                    head=head_of(stream), anchors={1: "x", 2: "y"})
    assert verdict.ok and verdict.checked == 2


def test_time_is_hashed_in_utc_whatever_the_machine_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine set to WIB must hash (and so verify) exactly as one set to UTC."""
    import time

    base = dict(seq=1, complaint_id="c1", event_id="e1", event_type="complaint.submitted",
                producer="intake", occurred_at=T, recorded_at=T, payload={"b": 1, "a": "x"},
                actor="pengawas", part=7)
    monkeypatch.setenv("TZ", "Asia/Jakarta")
    time.tzset()
    try:
        assert entry_hash(GENESIS, **base) == \
            "5b1730c3772637c533fd5ed511c8e2955ebdf0306fb958157400ef0c399929e4"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_entries_about_no_complaint_verify_in_their_event_ids_partition() -> None:
    event_ids = [f"n{i}" for i in range(400)]
    part = partition_of(NIL, "None") + 1  # any partition but that of the id "None"
    mine = [e for e in event_ids if partition_of(NIL, e) == part][:2]
    stream = []
    prev = GENESIS
    for pos, event_id in enumerate(mine, 1):
        row = {"seq": pos, "part": part, "part_seq": pos, "complaint_id": NIL,
               "event_id": event_id, "event_type": "audit.x", "producer": "oversight",
               "occurred_at": T, "recorded_at": T, "payload": {}, "actor": None,
               "prev_hash": prev}
        row["hash"] = prev = entry_hash(prev, seq=pos, complaint_id=NIL, event_id=event_id,
                                        event_type="audit.x", producer="oversight",
                                        occurred_at=T, recorded_at=T, payload={}, part=part)
        stream.append(row)
    assert len(stream) == 2
    assert check(stream, part=part, head=(2, prev)).ok
