"""The outbox relay: publishes a schema's unsent outbox rows in id order, marks them sent.

Delivery is at least once: a crash after publishing and before marking leaves the
rows unsent, and they are published again; consumers drop the repeat by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge

from awasi import faults, jsoncodec, tracing
from awasi.db.listen import Notifications

log = logging.getLogger(__name__)


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "awasi_outbox_published_total", "Outbox rows published", registry=registry
        )
        self.backlog = Gauge(
            "awasi_outbox_backlog", "Outbox rows not yet published", registry=registry
        )
        self.errors = Counter(
            "awasi_outbox_publish_errors_total", "Failed publish attempts", registry=registry
        )


class OutboxRelay:
    def __init__(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, schema: str, *,
        batch_size: int = 500, poll_interval_s: float = 0.5, retention: timedelta,
        metrics: RelayMetrics | None = None, listen_dsn: str | None = None,
    ) -> None:
        self.pool = pool
        # A dedicated connection LISTENs for new rows (the outbox trigger's NOTIFY);
        # without a DSN nothing wakes the relay and it polls.
        self.listen_dsn = listen_dsn
        self.new_rows = Notifications(listen_dsn or "", f"{schema}_outbox")
        self.producer = producer
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.retention = retention
        self.metrics = metrics
        # One relay per schema publishes at a time, whatever the number of service
        # processes: two relays publishing interleaved batches would break the
        # per-complaint order on the topic.
        self._lock_key = zlib.crc32(f"awasi.relay.{schema}".encode())

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many rows were published (0 if idle or
        another process holds the relay lock). Raises on broker or database errors."""
        async with self.pool.acquire() as conn, conn.transaction():
            # Rows are published in id order. A transaction that took a lower id may
            # commit after a higher one and so be published after it; events of one
            # complaint are written under that complaint's row lock, so their ids
            # follow their commit order and their order on the topic holds.
            # The lock is taken in a statement of its own, before the rows are read:
            # a statement's snapshot is taken when it starts, so a lock taken inside
            # the SELECT could be won just after another relay committed its batch,
            # with a snapshot from before that commit, and publish the batch again.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)",
                                       self._lock_key):
                return 0
            rows = await conn.fetch(
                f'SELECT id, topic, key, event_type, envelope, trace_context'
                f' FROM "{self.schema}".outbox'
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                self.batch_size,
            )
            if not rows:
                return 0
            futures = []
            # One PRODUCER span per row, a child of the change that wrote it (its stored
            # context); its own context travels as the record's `traceparent` header.
            spans = [tracing.relay_span(r["topic"], r["trace_context"], r["event_type"],
                                        r["envelope"]["event_id"]) for r in rows]
            try:
                for row, span in zip(rows, spans, strict=True):
                    value = _encode(row["envelope"])
                    futures.append(await self.producer.send(
                        row["topic"], value, key=row["key"].encode(),
                        headers=tracing.headers_of(span) or None))
                await asyncio.gather(*futures)
            except Exception as e:
                tracing.failed(spans, e)
                raise
            finally:
                for span in spans:
                    span.end()
            faults.point("relay.after_publish")
            # clock_timestamp(): when the broker acknowledged, not when the batch began.
            await conn.execute(
                f'UPDATE "{self.schema}".outbox SET sent_at = clock_timestamp()'
                " WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        if self.metrics:
            self.metrics.published.inc(len(rows))
        return len(rows)

    async def run(self) -> None:
        """Publish until cancelled; wakes on NOTIFY, polls as a fallback, backs off on errors."""
        listener = (asyncio.ensure_future(self.new_rows.run())
                    if self.listen_dsn is not None else None)
        backoff = 0.1
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                # Noted before the batch is read, so a NOTIFY that arrives while it is
                # published wakes the next round at once (rows it announces would
                # otherwise wait for the next commit or the poll).
                seen = self.new_rows.version("")
                try:
                    n = await self.publish_batch()
                    backoff = 0.1
                    if loop.time() - last_purge > 60:
                        await self.purge()
                        await self._update_backlog()
                        last_purge = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the relay must outlive any outage
                    if self.metrics:
                        self.metrics.errors.inc()
                    log.warning("outbox publish failed, retrying", extra={"error": repr(e)})
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if n >= self.batch_size:
                    continue
                await self.new_rows.wait("", seen, self.poll_interval_s)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _update_backlog(self) -> None:
        if self.metrics:
            n = await self.pool.fetchval(
                f'SELECT count(*) FROM "{self.schema}".outbox WHERE sent_at IS NULL'
            )
            self.metrics.backlog.set(n)

    async def purge(self, batch: int = 5000) -> int:
        """Delete sent rows older than the retention period, and dedupe records older
        than twice that; return how many outbox rows went.

        In batches of ``batch`` rows, each its own short statement (through the
        ``sent_at`` and ``processed_at`` indexes): a day of rows at a high rate
        deleted in one statement would hold its locks and its snapshot for minutes
        and leave one long burst of dead rows for vacuum. Rows of a batch another
        process deleted first are simply not counted (several processes purge).
        """
        outbox = await self._purge_batches(
            f'DELETE FROM "{self.schema}".outbox WHERE id IN ('
            f' SELECT id FROM "{self.schema}".outbox'
            "  WHERE sent_at IS NOT NULL AND sent_at < now() - $1::interval"
            "  ORDER BY sent_at LIMIT $2)", self.retention, batch)
        # Consumers' dedupe records must outlive every event that may be replayed or
        # redelivered: the outbox keeps rows for the retention period (a replay goes
        # back at most that far), so twice that is the window (docs/ARCHITECTURE.md,
        # "Retention").
        await self._purge_batches(
            f'DELETE FROM "{self.schema}".processed_events WHERE (consumer, event_id) IN ('
            f' SELECT consumer, event_id FROM "{self.schema}".processed_events'
            "  WHERE processed_at < now() - $1::interval ORDER BY processed_at LIMIT $2)",
            self.retention * 2, batch)
        return outbox

    async def _purge_batches(self, sql: str, age: timedelta, batch: int) -> int:
        total = 0
        while True:
            n = int((await self.pool.execute(sql, age, batch)).split()[-1])
            total += n
            if n < batch:
                return total


async def replay(pool: asyncpg.Pool, schema: str, since: datetime) -> int:
    """Mark rows sent at or after ``since`` unsent again, so the relay republishes them.

    Returns the number of rows. Consumers skip the events they already applied.
    """
    result = await pool.execute(
        f'UPDATE "{schema}".outbox SET sent_at = NULL WHERE sent_at >= $1', since
    )
    return int(result.split()[-1])


def _encode(envelope: Any) -> bytes:
    return jsoncodec.dumps_bytes(envelope)
