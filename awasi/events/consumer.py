"""The idempotent consumer.

For each event: validate it (invalid -> dead-letter topic with the reason); in a
database transaction (one per chunk of a partition's records) record ``(consumer,
event_id)`` in ``<schema>.processed_events`` and apply the handler's effect (no row
inserted means the event was applied before: skip it); commit the Kafka offset only
after that transaction committed. A chunk first runs without savepoints, recording
all its event ids in one statement (round trips are most of a consumer's latency);
if a handler fails for good, the chunk is rolled back and run again with a savepoint
per event, so the poison event is dead-lettered alone. A crash
anywhere therefore redelivers at most what was not yet committed, and the dedupe
record absorbs the repeat.

Errors: transient ones (lost connection, serialization failure, broker hiccup) are
retried a bounded number of times with backoff; if they persist the consumer seeks
back and waits, holding the partition (the order of one complaint's events matters
more than progress). Anything else is a poison event: it goes to the dead-letter
topic with the reason and the partition moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from awasi import faults, jsoncodec, tracing
from awasi.db.errors import is_transient
from awasi.events import topics
from awasi.events.chunked import ChunkedHandler
from awasi.events.envelope import Envelope, InvalidEvent
from awasi.jsonlog import event_context

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
# Runs first in a chunk's transaction with the envelopes about to be applied: a
# service takes the locks its handlers will need there, in an order of its choosing
# (oversight: its audit chain partitions, sorted, so two chunks never deadlock).
Prepare = Callable[[asyncpg.Connection, list[Envelope]], Awaitable[None]]


class PoisonEvent(Exception):
    """Raised by a handler for an event it can never apply (goes to the dead-letter topic)."""


class _HandlerFailed(Exception):
    """A handler failed for good on the fast path; the chunk is run again isolated."""


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.applied = Counter(
            "awasi_events_applied_total", "Events applied", ["consumer"], registry=registry
        )
        self.duplicates = Counter(
            "awasi_events_duplicate_total", "Redelivered events skipped", ["consumer"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "awasi_events_dead_lettered_total", "Events sent to the dead-letter topic",
            ["consumer"], registry=registry,
        )
        # How many partitions this replica holds now: with replicas in one group, an
        # operator (and the scaling test) sees the work is shared before sending any.
        self.partitions = Gauge(
            "awasi_consumer_partitions", "Partitions assigned to this replica",
            ["consumer"], registry=registry,
        )


class IdempotentConsumer:
    def __init__(
        self, *, name: str, schema: str, pool: asyncpg.Pool, consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer, handler: Handler,
        accepts: Callable[[Envelope], bool] = lambda _: True,
        max_retries: int = 5, retry_backoff_s: float = 0.2,
        metrics: ConsumerMetrics | None = None, chunk_size: int = 100,
        commit_interval_s: float = 0.2, prepare: Prepare | None = None,
    ) -> None:
        self.prepare = prepare
        self.chunk_size = chunk_size
        self.commit_interval_s = commit_interval_s
        self.commit_timeout_s = 10.0
        self.name = name
        self.schema = schema
        self.pool = pool
        self.consumer = consumer
        self.producer = producer  # for the dead-letter topic
        self.handler = handler
        self.accepts = accepts
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.metrics = metrics

    async def run(self) -> None:
        """Consume until cancelled. The caller starts and stops the aiokafka consumer.

        Offsets are committed at most every ``commit_interval_s`` (and when the topic
        goes quiet, and on the way out), not after every batch: the commit is a round
        trip to the broker in the loop, and an offset committed late only means a
        redelivery after a crash, which the dedupe records absorb."""
        loop = asyncio.get_running_loop()
        pending: dict[TopicPartition, int] = {}
        last_commit = loop.time()
        try:
            while True:
                try:
                    batch = await self.consumer.getmany(timeout_ms=500, max_records=500)
                    if self.metrics:
                        self.metrics.partitions.labels(self.name).set(
                            len(self.consumer.assignment()))
                except KafkaError as e:
                    log.warning("consumer fetch failed", extra={"error": repr(e)})
                    await asyncio.sleep(0.5)
                    continue
                if batch:
                    # Partitions are independent: work them concurrently, each in order.
                    results = await asyncio.gather(
                        *(self._partition(tp, records) for tp, records in batch.items())
                    )
                    pending.update({tp: off for tp, off in results if off is not None})
                if pending and (not batch
                                or loop.time() - last_commit >= self.commit_interval_s):
                    await self._commit(pending)
                    pending = {}
                    last_commit = loop.time()
        finally:
            if pending:
                await self._commit(pending, timeout_s=min(self.commit_timeout_s, 2.0))

    async def _partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[TopicPartition, int | None]:
        """Process one partition's records in order, a chunk per transaction; return
        the offset to commit."""
        next_offset: int | None = None
        for i in range(0, len(records), self.chunk_size):
            chunk = records[i:i + self.chunk_size]
            if not await self._process_chunk(chunk):
                # Still failing after the retries: come back to this chunk later. A
                # rebalance may have taken the partition meanwhile (seeking it would
                # raise and kill the consumer): then its new owner re-reads it from the
                # last committed offset, and this chunk is simply let go.
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, chunk[0].offset)
                else:
                    log.info("partition lost to a rebalance during retries",
                             extra={"partition": str(tp)})
                await asyncio.sleep(min(self.retry_backoff_s * 10, 5.0))
                break
            next_offset = chunk[-1].offset + 1
        return tp, next_offset

    async def _process_chunk(self, records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        """Apply a chunk of one partition's records in one transaction, each record in
        its own savepoint (a poison event rolls back alone). True when every record is
        done with (applied, skipped as a repeat, or dead-lettered); False when
        transient errors outlasted the retries."""
        isolate = False
        for attempt in range(self.max_retries + 1):
            try:
                if isolate:
                    dead, applied, repeats = await self._apply_isolated(records)
                else:
                    dead, applied, repeats = await self._apply_together(records)
            except asyncio.CancelledError:
                raise
            except _HandlerFailed:
                # Rolled back: run the chunk again, each event in its own savepoint.
                isolate = True
                continue
            except Exception as e:
                if not is_transient(e):
                    if len(records) > 1:
                        # Failed at commit: isolate the culprit record by record.
                        for record in records:
                            if not await self._process_chunk([record]):
                                return False
                        return True
                    log.exception("event failed at commit; dead-lettering")
                    return await self._dead_letter(records[0], f"{self.name}: {e!r}")
                log.warning("transient error applying events",
                            extra={"attempt": attempt + 1, "error": repr(e)})
                await asyncio.sleep(self.retry_backoff_s * (2**attempt))
                continue
            faults.point("consumer.after_db_commit")
            if self.metrics:
                self.metrics.applied.labels(self.name).inc(applied)
                self.metrics.duplicates.labels(self.name).inc(repeats)
            # Dead letters go out after the commit: if one cannot be sent, the chunk is
            # read again, the applied records are skipped as repeats, and it is retried.
            for record, reason in dead:
                if not await self._dead_letter(record, reason):
                    return False
            return True
        return False

    def _decode(self, records: list[ConsumerRecord[bytes, bytes]]) -> tuple[
            list[tuple[ConsumerRecord[bytes, bytes], str]],
            list[tuple[ConsumerRecord[bytes, bytes], Envelope]]]:
        """Split records into invalid ones (with the reason, for the dead-letter topic)
        and the valid envelopes this consumer accepts, in order."""
        dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        todo: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        for record in records:
            try:
                envelope = Envelope.from_bytes(record.value)
            except InvalidEvent as e:
                dead.append((record, e.reason))
                continue
            if self.accepts(envelope):
                todo.append((record, envelope))
        return dead, todo

    async def _apply_together(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[tuple[ConsumerRecord[bytes, bytes], str]], int, int]:
        """The fast path: one transaction, the dedupe records in one statement, no
        savepoints. A handler's permanent failure rolls it all back (``_HandlerFailed``)."""
        dead, todo = self._decode(records)
        applied = 0
        async with self.pool.acquire() as conn, conn.transaction():
            if todo:
                new = set(await conn.fetchval(
                    f'WITH i AS (INSERT INTO "{self.schema}".processed_events'
                    " (consumer, event_id) SELECT $1, unnest($2::uuid[])"
                    " ON CONFLICT DO NOTHING RETURNING event_id)"
                    " SELECT coalesce(array_agg(event_id), '{}') FROM i",
                    self.name, [e.event_id for _, e in todo]))
                if self.prepare is not None:
                    await self.prepare(conn, [e for _, e in todo if e.event_id in new])
                fresh = []
                for record, envelope in todo:
                    if envelope.event_id not in new:
                        continue  # applied before (or twice in this chunk): a redelivery
                    new.discard(envelope.event_id)
                    fresh.append((record, envelope))
                try:
                    await self._apply_fresh(conn, fresh)
                except Exception as e:
                    if is_transient(e):
                        raise
                    raise _HandlerFailed from e
                applied = len(fresh)
        return dead, applied, len(todo) - applied

    async def _apply_fresh(self, conn: asyncpg.Connection,
                           fresh: list[tuple[ConsumerRecord[bytes, bytes], Envelope]]) -> None:
        """The fast path's effects, in order: set-based runs for a ``ChunkedHandler``
        (awasi/events/chunked.py), else one handler call per event; each event in the
        trace its record's headers name."""
        if isinstance(self.handler, ChunkedHandler):
            record_of = {e.event_id: r for r, e in fresh}
            await self.handler.apply_chunk(
                conn, [e for _, e in fresh],
                span_of=lambda e: self._span(record_of[e.event_id], e))
            return
        for record, envelope in fresh:
            with event_context(envelope.complaint_id, str(envelope.event_id)), \
                    self._span(record, envelope):
                await self.handler(conn, envelope)

    async def _apply_isolated(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[tuple[ConsumerRecord[bytes, bytes], str]], int, int]:
        """The careful path: a savepoint per event, so a poison event rolls back alone
        and is dead-lettered while the others commit."""
        dead, todo = self._decode(records)
        applied = repeats = 0
        async with self.pool.acquire() as conn, conn.transaction():
            if self.prepare is not None and todo:
                await self.prepare(conn, [e for _, e in todo])
            for record, envelope in todo:
                with event_context(envelope.complaint_id, str(envelope.event_id)), \
                        self._span(record, envelope):
                    try:
                        async with conn.transaction():  # a savepoint
                            inserted = await conn.fetchval(
                                f'INSERT INTO "{self.schema}".processed_events'
                                " (consumer, event_id) VALUES ($1, $2)"
                                " ON CONFLICT DO NOTHING RETURNING 1",
                                self.name, envelope.event_id,
                            )
                            if inserted is None:
                                repeats += 1  # applied before: a redelivery
                                continue
                            await self.handler(conn, envelope)
                            applied += 1
                    except PoisonEvent as e:
                        dead.append((record, f"{self.name}: {e}"))
                    except Exception as e:
                        if is_transient(e):
                            raise
                        log.exception("event handler failed; dead-lettering")
                        dead.append((record, f"{self.name}: {e!r}"))
        return dead, applied, repeats

    def _span(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope,
              ) -> contextlib.AbstractContextManager[object]:
        """The event's CONSUMER span, continuing the trace named in its headers."""
        return tracing.consumer_span(record.topic, record.headers, envelope.type,
                                     envelope.event_id, self.name)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Apply one record (a chunk of one); see ``_process_chunk``."""
        return await self._process_chunk([record])

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> bool:
        body = {
            "reason": reason,
            "consumer": self.name,
            "source": {"topic": record.topic, "partition": record.partition,
                       "offset": record.offset},
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            "value": record.value.decode("utf-8", "replace") if record.value else None,
        }
        try:
            await self.producer.send_and_wait(
                topics.DEAD_LETTER, jsoncodec.dumps_bytes(body), key=record.key,
                headers=[("reason", reason[:500].encode())],
            )
        except KafkaError as e:
            log.warning("dead-letter publish failed", extra={"error": repr(e)})
            return False
        log.error("event dead-lettered", extra={"reason": reason, "offset": record.offset})
        if self.metrics:
            self.metrics.dead_lettered.labels(self.name).inc()
        return True

    async def _commit(self, offsets: dict[TopicPartition, int],
                      timeout_s: float | None = None) -> None:
        # Only partitions still assigned: one taken by a rebalance is re-read by its new
        # owner from its last committed offset (the dedupe records absorb the repeats).
        assigned = self.consumer.assignment()
        offsets = {tp: off for tp, off in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            # aiokafka retries a retriable commit error without end (a broker that lost
            # the topic answers UnknownTopicOrPartition for ever): bound it. An offset
            # left uncommitted only means a redelivery, which the dedupe absorbs.
            async with asyncio.timeout(timeout_s or self.commit_timeout_s):
                await self.consumer.commit(offsets)
        except TimeoutError:
            log.warning("offset commit timed out; events may be redelivered")
        except CommitFailedError:
            # A rebalance took the partitions away; their new owner re-reads from the
            # last committed offset and the dedupe records absorb the repeats.
            log.info("offset commit lost to a rebalance")
        except KafkaError as e:
            log.warning("offset commit failed", extra={"error": repr(e)})
