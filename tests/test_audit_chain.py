"""Tamper tests: change, delete and reorder timeline rows in PostgreSQL; the verify
call (HTTP and CLI) names the first entry that does not match."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from awasi.settings import Settings
from services.oversight.chain import verify
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


@pytest.fixture
async def chain_pool(database_url: str) -> asyncpg.Pool:
    pool = await open_pool(database_url)
    ctx, _ = make_ctx()
    # Two cases, interleaved: 8 entries in one global chain.
    a, b = new_cid(), new_cid()
    t = MONDAY_9
    due = t + timedelta(days=2)
    await feed(pool, ctx, submitted(a, t), submitted(b, t), routed(a, t, due, None),
               routed(b, t, due, None), acknowledged(a, t + timedelta(hours=1)),
               acknowledged(b, t + timedelta(hours=1)), resolved(a, t + timedelta(hours=2)),
               resolved(b, t + timedelta(hours=3)))
    yield pool
    await pool.close()


async def check(pool: asyncpg.Pool) -> dict:
    async with pool.acquire() as conn:
        return (await verify(conn)).to_json()


async def test_untouched_chain_verifies(chain_pool: asyncpg.Pool) -> None:
    assert await check(chain_pool) == {"ok": True, "checked": 8}


async def test_changed_payload_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute(
        "UPDATE oversight.timeline SET payload = jsonb_set(payload, '{agency}', '\"X\"')"
        " WHERE seq = 5")
    verdict = await check(chain_pool)
    assert verdict["ok"] is False
    assert verdict["first_bad"]["seq"] == 5
    assert "altered" in verdict["first_bad"]["reason"]


async def test_changed_timestamp_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute(
        "UPDATE oversight.timeline SET occurred_at = occurred_at - interval '1 day' WHERE seq = 7")
    assert (await check(chain_pool))["first_bad"]["seq"] == 7


async def test_recomputed_hash_of_a_changed_row_breaks_the_next(chain_pool: asyncpg.Pool) -> None:
    # A forger who recomputes the edited row's own hash still breaks the link after it.
    from services.oversight.chain import entry_hash

    row = await chain_pool.fetchrow("SELECT * FROM oversight.timeline WHERE seq = 3")
    payload = dict(row["payload"], agency="MDN-BKPSDM")
    forged = entry_hash(row["prev_hash"], seq=3, complaint_id=row["complaint_id"],
                        event_id=row["event_id"], event_type=row["event_type"],
                        producer=row["producer"], occurred_at=row["occurred_at"],
                        recorded_at=row["recorded_at"], payload=payload)
    await chain_pool.execute("UPDATE oversight.timeline SET payload = $1::jsonb, hash = $2"
                             " WHERE seq = 3", payload, forged)
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 4
    assert "prev_hash" in verdict["first_bad"]["reason"]


async def test_deleted_row_is_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE seq = 4")
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 5
    assert "gap" in verdict["first_bad"]["reason"]


async def test_deleted_whole_case_is_found(chain_pool: asyncpg.Pool) -> None:
    cid = await chain_pool.fetchval("SELECT complaint_id FROM oversight.timeline WHERE seq = 2")
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE complaint_id = $1", cid)
    assert (await check(chain_pool))["first_bad"]["seq"] == 3


async def test_deleted_newest_rows_are_found(chain_pool: asyncpg.Pool) -> None:
    await chain_pool.execute("DELETE FROM oversight.timeline WHERE seq >= 7")
    verdict = await check(chain_pool)
    assert verdict["ok"] is False
    assert "chain head" in verdict["first_bad"]["reason"]


async def test_reordered_rows_are_found(chain_pool: asyncpg.Pool) -> None:
    # Swap entries 5 and 6 (seq numbers exchanged, hashes kept).
    async with chain_pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE oversight.timeline SET seq = -5 WHERE seq = 5")
        await conn.execute("UPDATE oversight.timeline SET seq = 5 WHERE seq = 6")
        await conn.execute("UPDATE oversight.timeline SET seq = 6 WHERE seq = -5")
    verdict = await check(chain_pool)
    assert verdict["first_bad"]["seq"] == 5


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
