"""Tamper tests: change, delete, reorder, move and truncate timeline rows in
PostgreSQL; the verify call (HTTP and CLI) names the first entry that does not
match. The chain is partitioned (services/oversight/chain.py): the fixture puts two
cases in one partition and a third in another, so both a case sharing its partition
and a case alone in one are covered. Also: appends for complaints of different
partitions do not wait on each other, and a pre-partition (legacy) chain keeps
verifying under the partitions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from awasi.settings import Settings
from services.oversight import chain
from services.oversight.chain import verify
from tests.support.chain import cid_in, write_legacy
from tests.support.oversight import (
    MONDAY_9,
    acknowledged,
    feed,
    make_ctx,
    new_cid,
    open_pool,
    resolved,
    routed,
    submitted,
)
from tests.support.stack import process_env

SHARED, ALONE = 5, 9  # partitions


@pytest.fixture
async def chain_pool(database_url: str) -> asyncpg.Pool:
    pool = await open_pool(database_url)
    ctx, _ = make_ctx()
    # Cases a and b share partition 5, c is alone in partition 9; interleaved, 9 entries:
    # seq 1 2 3 (submitted a b c), 4 5 (routed a b), 6 7 (acknowledged a b),
    # 8 9 (resolved a c). Partition 5 holds 1 2 4 5 6 7 8 at positions 1..7.
    a = cid_in(SHARED)
    b = cid_in(SHARED, {a})
    c = cid_in(ALONE)
    t = MONDAY_9
    due = t + timedelta(days=2)
    await feed(pool, ctx, submitted(a, t), submitted(b, t), submitted(c, t),
               routed(a, t, due, None), routed(b, t, due, None),
               acknowledged(a, t + timedelta(hours=1)), acknowledged(b, t + timedelta(hours=1)),
               resolved(a, t + timedelta(hours=2)), resolved(c, t + timedelta(hours=3)))
    yield pool
    await pool.close()


async def check(pool: asyncpg.Pool) -> dict:
    async with pool.acquire() as conn:
        return (await verify(conn)).to_json()


async def test_untouched_chain_verifies(chain_pool: asyncpg.Pool) -> None:
    assert await check(chain_pool) == {"ok": True, "checked": 9}
    rows = await chain_pool.fetch("SELECT seq, part, part_seq FROM oversight.timeline"
                                  " ORDER BY seq")
    assert [(r["part"], r["part_seq"]) for r in rows] == [
        (5, 1), (5, 2), (9, 1), (5, 3), (5, 4), (5, 5), (5, 6), (5, 7), (9, 2)]


async def test_changed_payload_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute(
        "UPDATE oversight.timeline SET payload = jsonb_set(payload, '{agency}', '\"X\"')"
        " WHERE seq = 5")
    verdict = await check(chain_pool)
    assert verdict["ok"] is False
    assert verdict["first_bad"]["seq"] == 5
    assert (verdict["first_bad"]["partition"], verdict["first_bad"]["partition_seq"]) == (5, 4)
    assert "altered" in verdict["first_bad"]["reason"]


async def test_changed_timestamp_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute(
        "UPDATE oversight.timeline SET occurred_at = occurred_at - interval '1 day' WHERE seq = 7")
    assert (await check(chain_pool))["first_bad"]["seq"] == 7


async def test_recomputed_hash_of_a_changed_row_breaks_the_next(chain_pool: asyncpg.Pool) -> None:
    # A forger who recomputes the edited row's own hash still breaks the link after it
    # (the next entry of its partition: seq 5 follows 4 in partition 5).
    row = await chain_pool.fetchrow("SELECT * FROM oversight.timeline WHERE seq = 4")
    payload = dict(row["payload"], agency="MDN-BKPSDM")
    forged = chain.entry_hash(row["prev_hash"], seq=row["part_seq"],
                              complaint_id=row["complaint_id"], event_id=row["event_id"],
                              event_type=row["event_type"], producer=row["producer"],
                              occurred_at=row["occurred_at"], recorded_at=row["recorded_at"],
                              payload=payload, part=row["part"])
    await chain_pool.execute("UPDATE oversight.timeline SET payload = $1::jsonb, hash = $2"
                             " WHERE seq = 4", payload, forged)
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 5
    assert "prev_hash" in verdict["first_bad"]["reason"]


async def test_deleted_row_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE seq = 4")
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 5
    assert "gap" in verdict["first_bad"]["reason"]


async def test_deleted_case_sharing_its_partition_is_found(chain_pool: asyncpg.Pool) -> None:
    cid = await chain_pool.fetchval("SELECT complaint_id FROM oversight.timeline WHERE seq = 2")
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE complaint_id = $1", cid)
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 4  # the next entry left in partition 5
    assert "gap" in verdict["first_bad"]["reason"]


async def test_deleted_case_alone_in_its_partition_is_found(chain_pool: asyncpg.Pool) -> None:
    cid = await chain_pool.fetchval("SELECT complaint_id FROM oversight.timeline WHERE seq = 3")
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE complaint_id = $1", cid)
    verdict = await check(chain_pool)
    assert verdict["ok"] is False
    assert verdict["first_bad"]["partition"] == ALONE
    assert "chain head names entry 2 but the chain ends at 0" in verdict["first_bad"]["reason"]


async def test_truncated_partition_tail_is_found(chain_pool: asyncpg.Pool) -> None:
    # The newest entries of partition 5 (positions 6 and 7), the others untouched.
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE part = 5 AND part_seq >= 6")
    verdict = await check(chain_pool)
    assert verdict["ok"] is False
    assert (verdict["first_bad"]["partition"], verdict["first_bad"]["partition_seq"]) == (5, 6)
    assert "chain head" in verdict["first_bad"]["reason"]


async def test_reordered_rows_are_found(chain_pool: asyncpg.Pool) -> None:
    # Swap entries 5 and 6 of partition 5 (positions exchanged, hashes kept).
    async with chain_pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE oversight.timeline SET part_seq = -5 WHERE seq = 5")
        await conn.execute("UPDATE oversight.timeline SET part_seq = 4 WHERE seq = 6")
        await conn.execute("UPDATE oversight.timeline SET part_seq = 5 WHERE seq = 5")
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 6
    assert verdict["first_bad"]["partition_seq"] == 4


async def test_entry_moved_to_another_partition_is_found(chain_pool: asyncpg.Pool) -> None:
    # The newest entry of partition 5 moved to the end of partition 9 (heads adjusted
    # so that only the move itself is left to catch).
    async with chain_pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE oversight.timeline SET part = 9, part_seq = 3,"
                           " prev_hash = (SELECT hash FROM oversight.timeline WHERE seq = 9)"
                           " WHERE seq = 8")
        await conn.execute("UPDATE oversight.chain_heads SET last_seq = 6, last_hash ="
                           " (SELECT hash FROM oversight.timeline WHERE seq = 7) WHERE part = 5")
        await conn.execute("UPDATE oversight.chain_heads SET last_seq = 3, last_hash ="
                           " (SELECT hash FROM oversight.timeline WHERE seq = 8) WHERE part = 9")
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 8
    assert "partition" in verdict["first_bad"]["reason"]


async def test_complaints_in_different_partitions_append_concurrently(
        chain_pool: asyncpg.Pool) -> None:
    """One transaction appends for a case and stays open; a second connection appends
    for a case of another partition with a short lock_timeout: it must not wait. For
    a case of the held partition it does wait (the test can tell the difference)."""
    ctx, _ = make_ctx()
    now = datetime.now(UTC)
    async with chain_pool.acquire() as holder, chain_pool.acquire() as other:
        tx = holder.transaction()
        await tx.start()
        try:
            await chain.append(holder, submitted(cid_in(SHARED), MONDAY_9), now)
            async with other.transaction():
                await other.execute("SET LOCAL lock_timeout = '300ms'")
                await chain.append(other, submitted(cid_in(ALONE), MONDAY_9), now)
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with other.transaction():
                    await other.execute("SET LOCAL lock_timeout = '300ms'")
                    await chain.append(other, submitted(cid_in(SHARED), MONDAY_9), now)
        finally:
            await tx.commit()
    assert await check(chain_pool) == {"ok": True, "checked": 11}


async def test_a_legacy_chain_verifies_under_the_partitions(database_url: str) -> None:
    """Entries written before the partitions stay a closed chain the partitions start
    from: it verifies with them, and editing it is still caught."""
    pool = await open_pool(database_url)
    try:
        await write_legacy(pool, 3, new_cid())
        ctx, _ = make_ctx()
        await feed(pool, ctx, submitted(cid_in(SHARED), MONDAY_9),
                   submitted(cid_in(ALONE), MONDAY_9))
        assert await check(pool) == {"ok": True, "checked": 5}
        first = await pool.fetchrow("SELECT prev_hash, seq FROM oversight.timeline"
                                    " WHERE part = $1 AND part_seq = 1", SHARED)
        assert first["seq"] == 4  # row ids go on from the legacy chain
        assert first["prev_hash"] == await pool.fetchval(
            "SELECT last_hash FROM oversight.chain_head")
        await pool.execute("UPDATE oversight.timeline SET producer = 'x' WHERE seq = 2")
        verdict = await check(pool)
        assert verdict["first_bad"]["seq"] == 2 and verdict["first_bad"]["partition"] is None
    finally:
        await pool.close()


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "awasi", "audit", "verify"], env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=60)


async def test_cli_names_the_first_bad_entry(chain_pool: asyncpg.Pool, database_url: str) -> None:
    env = process_env(database_url, "127.0.0.1:1")
    ok = await asyncio.to_thread(run_cli, env)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    await chain_pool.execute("UPDATE oversight.timeline SET event_type = 'x' WHERE seq = 2")
    bad = await asyncio.to_thread(run_cli, env)
    assert bad.returncode == 1
    assert "first bad entry: seq 2" in bad.stdout


@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
async def test_http_verify_names_the_first_bad_entry(settings: Settings) -> None:
    # The public call is incremental: it walks what came after the last verified entry
    # (tests/test_security_audit.py covers the increment and the rate limit).
    from services.oversight.app import create_app
    from tests.support.services import running_app

    assert settings.database_url
    pool = await open_pool(settings.database_url)
    ctx, _ = make_ctx()
    cid = new_cid()
    await feed(pool, ctx, submitted(cid, MONDAY_9), acknowledged(cid, MONDAY_9))
    try:
        async with running_app(create_app(settings.with_(audit_verify_min_interval_s=0))
                               ) as client:
            r = await client.get("/api/v1/audit/verify")
            body = await r.json()
            assert (body["ok"], body["checked"], body["verified_through"]) == (True, 2, 2)
            await feed(pool, ctx, resolved(cid, MONDAY_9 + timedelta(hours=1)))
            await pool.execute("UPDATE oversight.timeline SET producer = 'x' WHERE seq = 3")
            r = await client.get("/api/v1/audit/verify")
            body = await r.json()
            assert body["ok"] is False
            assert body["first_bad"]["seq"] == 3
            assert body["first_bad"]["complaint_id"] == cid
    finally:
        await pool.close()
