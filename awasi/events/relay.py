"""The outbox relay: publishes a schema's unsent outbox rows in id order, marks them sent.

Delivery is at least once: a crash after publishing and before marking leaves the
rows unsent, and they are published again; consumers drop the repeat by event_id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import zlib
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge

from awasi import faults, jsoncodec, tracing
from awasi.db.listen import Notifications, Version
from awasi.db.locks import try_session_advisory_lock

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


class _Batch:
    """Claimed rows handed to the producer; ``acked`` resolves when the broker
    acknowledged every one of them (or fails with the first error)."""

    def __init__(self, ids: list[int], acked: asyncio.Future[Any]) -> None:
        self.ids = ids
        self.acked = acked


class OutboxRelay:
    """Publishes a schema's outbox; one process at a time per schema (the leader).

    The leader holds a session advisory lock on a connection of its own for as long as
    it leads, and claims and marks rows on that connection: a statement there runs only
    while the session, and so the lock, lives. Per batch that is two statements (claim,
    mark sent), and up to ``max_in_flight`` batches are at the broker at once: the next
    batch is claimed and handed to the producer while the previous one waits for its
    acknowledgement.
    """

    def __init__(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, schema: str, *,
        batch_size: int = 500, poll_interval_s: float = 0.5, retention: timedelta,
        metrics: RelayMetrics | None = None, listen_dsn: str | None = None,
        max_in_flight: int = 4,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
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
        self.max_in_flight = max_in_flight
        # One relay per schema publishes at a time, whatever the number of service
        # processes: two relays publishing interleaved batches would break the
        # per-complaint order on the topic.
        self._lock_key = zlib.crc32(f"awasi.relay.{schema}".encode())
        # Rows in id order, skipping those already in flight (claimed, not yet marked
        # sent). No cursor past the last claimed id: a transaction that took a lower id
        # may commit later, and a cursor would skip its rows for good.
        self._claim_sql = (
            "SELECT id, topic, key, event_type, envelope, trace_context"
            f' FROM "{schema}".outbox'
            " WHERE sent_at IS NULL AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1")
        # clock_timestamp(): when the broker acknowledged, not when a transaction began.
        self._mark_sql = (f'UPDATE "{schema}".outbox SET sent_at = clock_timestamp()'
                          " WHERE id = ANY($1::bigint[])")
        self._last_purge = 0.0
        # The most batches at the broker at once since start (a diagnostic, shown by
        # the tests that pipelining happened).
        self.peak_in_flight = 0

    async def run(self) -> None:
        """Publish until cancelled: lead when the lock is free (wakes on NOTIFY, polls
        as a fallback), otherwise try again every poll interval; backs off on errors."""
        listener = (asyncio.ensure_future(self.new_rows.run())
                    if self.listen_dsn is not None else None)
        backoff = 0.1
        try:
            while True:
                try:
                    # The lock is taken once, in a statement of its own: every claim
                    # after it has a snapshot taken after the lock was won, so it sees
                    # the previous leader's last marks (they committed before its
                    # session let go of the lock) and does not publish them again.
                    async with self.pool.acquire() as conn, \
                            try_session_advisory_lock(conn, self._lock_key) as leader:
                        if leader:
                            backoff = 0.1
                            await self._lead(conn)
                    await self._housekeeping()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the relay must outlive any outage
                    if self.metrics:
                        self.metrics.errors.inc()
                    log.warning("outbox publish failed, retrying", extra={"error": repr(e)})
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                # Another process leads; it publishes what is committed meanwhile.
                await asyncio.sleep(self.poll_interval_s)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _lead(self, conn: asyncpg.Connection) -> None:
        """Publish while holding the lock on ``conn``; returns only by raising (a
        publish or database error, or cancellation)."""
        in_flight: collections.deque[_Batch] = collections.deque()
        try:
            while True:
                if in_flight and in_flight[0].acked.done():
                    await self._settle(conn, in_flight)
                await self._housekeeping()
                # Noted before the rows are read, so a NOTIFY that arrives meanwhile
                # wakes the next round at once.
                seen = self.new_rows.version("")
                if len(in_flight) < self.max_in_flight:
                    rows = await conn.fetch(self._claim_sql, self.batch_size,
                                            [i for b in in_flight for i in b.ids])
                    if rows:
                        in_flight.append(await self._send(rows))
                        self.peak_in_flight = max(self.peak_in_flight, len(in_flight))
                        continue
                    if in_flight:
                        # Room for another batch: wake for new rows as well as for the
                        # oldest batch's acknowledgement, so a fresh row goes out at once.
                        await self._ack_or_new_rows(in_flight[0].acked, seen)
                        continue
                    await self.new_rows.wait("", seen, self.poll_interval_s)
                    continue
                await asyncio.wait([in_flight[0].acked])
        except Exception:
            # Still holding the lock, let the batches at the broker settle before
            # anyone publishes again from the oldest unsent row: a repeat sent while the
            # first copy may still land would only add to the disorder a failure
            # already causes. Bounded: the producer fails a send by its own timeouts.
            if in_flight:
                await asyncio.wait([b.acked for b in in_flight], timeout=60)
            raise
        finally:
            # Leaving the lead: batches still in flight are not marked sent, so the
            # next leader publishes them again (at least once; consumers dedupe).
            # Their sends are left to finish (the producer owns them); each batch's
            # callback ends its spans and reads its outcome.
            in_flight.clear()

    async def _send(self, rows: list[asyncpg.Record]) -> _Batch:
        """Hand ``rows`` to the producer in id order. The producer keeps the order of
        sends within a partition (one request in flight per partition), so batches
        handed over one after another reach each partition in id order."""
        # One PRODUCER span per row, a child of the change that wrote it (its stored
        # context); its own context travels as the record's `traceparent` header.
        spans = [tracing.relay_span(r["topic"], r["trace_context"], r["event_type"],
                                    r["envelope"]["event_id"]) for r in rows]
        futures = []
        try:
            for row, span in zip(rows, spans, strict=True):
                futures.append(await self.producer.send(
                    row["topic"], _encode(row["envelope"]), key=row["key"].encode(),
                    headers=tracing.headers_of(span) or None))
        except Exception as e:
            tracing.failed(spans, e)
            for span in spans:
                span.end()
            for f in futures:
                f.add_done_callback(_retrieve)
            raise
        acked = asyncio.gather(*futures)

        def ended(done: asyncio.Future[Any]) -> None:
            error = None if done.cancelled() else done.exception()
            if error is not None:
                tracing.failed(spans, error)
            for span in spans:
                span.end()

        acked.add_done_callback(ended)
        return _Batch([r["id"] for r in rows], acked)

    async def _settle(self, conn: asyncpg.Connection, in_flight: collections.deque[_Batch],
                      ) -> None:
        """Mark sent every acknowledged batch at the head of ``in_flight``, oldest
        first, in one statement; then raise the error of a failed batch, if the head
        reached one (its rows, and those after it, stay unsent and are published
        again by whoever leads next)."""
        done: list[_Batch] = []
        error: BaseException | None = None
        while in_flight and in_flight[0].acked.done():
            error = in_flight[0].acked.exception()
            if error is not None:
                break
            done.append(in_flight.popleft())
        if done:
            faults.point("relay.after_publish")
            ids = [i for b in done for i in b.ids]
            await conn.execute(self._mark_sql, ids)
            if self.metrics:
                self.metrics.published.inc(len(ids))
        if error is not None:
            raise error

    async def _ack_or_new_rows(self, acked: asyncio.Future[Any], seen: Version) -> None:
        wake = asyncio.ensure_future(self.new_rows.wait("", seen, self.poll_interval_s))
        try:
            await asyncio.wait([acked, wake], return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wake

    async def _housekeeping(self) -> None:
        """Once a minute: purge old rows, update the backlog gauge."""
        now = asyncio.get_running_loop().time()
        if now - self._last_purge > 60:
            self._last_purge = now
            await self.purge()
            await self._update_backlog()

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


def _retrieve(f: asyncio.Future[Any]) -> None:
    """Read a send's outcome that nobody awaits (its batch failed before it was
    formed), so asyncio does not report it as never retrieved."""
    if not f.cancelled():
        f.exception()


def _encode(envelope: Any) -> bytes:
    return jsoncodec.dumps_bytes(envelope)
