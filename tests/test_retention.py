"""Retention of the tables that grow with traffic: sent outbox rows go after the
retention period and consumers' dedupe records after twice that, in bounded batches;
unsent rows and recent records stay, and a redelivery inside the window is still
recognised. (The statistics' rollup deltas are folded by compaction, checked in
tests/test_rollups.py: their size follows the keys, not the events.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from awasi.db import create_pool
from awasi.events.relay import OutboxRelay
from tests.support import probe


async def test_purge_in_batches_keeps_the_window_and_the_unsent(database_url: str) -> None:
    await probe.migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await probe.write_events(pool, range(12))
        now = datetime.now(UTC)
        # 7 sent 30 days ago (past the 7-day retention), 3 sent an hour ago, 2 unsent
        # (an unsent row is never deleted, however old).
        ids = [r["id"] for r in await pool.fetch("SELECT id FROM probe.outbox ORDER BY id")]
        await pool.execute("UPDATE probe.outbox SET sent_at = $2 WHERE id = ANY($1)",
                           ids[:7], now - timedelta(days=30))
        await pool.execute("UPDATE probe.outbox SET sent_at = $2 WHERE id = ANY($1)",
                           ids[7:10], now - timedelta(hours=1))
        await pool.execute("UPDATE probe.outbox SET created_at = $1 WHERE id = ANY($2)",
                           now - timedelta(days=60), ids[10:])
        # Dedupe records: 5 older than twice the retention, 4 inside the window.
        old_ids = [uuid.uuid4() for _ in range(5)]
        kept_ids = [uuid.uuid4() for _ in range(4)]
        await pool.executemany(
            "INSERT INTO probe.processed_events (consumer, event_id, processed_at)"
            " VALUES ('c', $1, $2)",
            [(e, now - timedelta(days=15)) for e in old_ids]
            + [(e, now - timedelta(days=13)) for e in kept_ids])

        relay = OutboxRelay(pool, None, "probe", retention=timedelta(days=7))  # type: ignore[arg-type]
        assert await relay.purge(batch=3) == 7       # three batches: 3, 3, 1
        left = [r["id"] for r in await pool.fetch("SELECT id FROM probe.outbox ORDER BY id")]
        assert left == ids[7:]
        records = {r["event_id"] for r in await pool.fetch(
            "SELECT event_id FROM probe.processed_events WHERE consumer = 'c'")}
        assert records == set(kept_ids)
        # Inside the window a redelivery is still recognised (no row inserted).
        again = await pool.fetchval(
            "INSERT INTO probe.processed_events (consumer, event_id) VALUES ('c', $1)"
            " ON CONFLICT DO NOTHING RETURNING 1", kept_ids[0])
        assert again is None
        assert await relay.purge(batch=3) == 0       # nothing more is due
    finally:
        await pool.close()
