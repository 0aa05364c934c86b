"""The idempotent consumer.

For each event: validate it (invalid -> dead-letter topic with the reason); in one
database transaction record ``(consumer, event_id)`` in ``<schema>.processed_events``
and apply the handler's effect (no row inserted means the event was applied before:
skip it); commit the Kafka offset only after that transaction committed. A crash
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
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry, Counter

from awasi import faults
from awasi.db.errors import is_transient
from awasi.events import topics
from awasi.events.envelope import Envelope, InvalidEvent
from awasi.jsonlog import event_context

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]


class PoisonEvent(Exception):
    """Raised by a handler for an event it can never apply (goes to the dead-letter topic)."""


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


class IdempotentConsumer:
    def __init__(
        self, *, name: str, schema: str, pool: asyncpg.Pool, consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer, handler: Handler,
        accepts: Callable[[Envelope], bool] = lambda _: True,
        max_retries: int = 5, retry_backoff_s: float = 0.2,
        metrics: ConsumerMetrics | None = None,
    ) -> None:
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
        """Consume until cancelled. The caller starts and stops the aiokafka consumer."""
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=500)
            except KafkaError as e:
                log.warning("consumer fetch failed", extra={"error": repr(e)})
                await asyncio.sleep(0.5)
                continue
            if not batch:
                continue
            # Partitions are independent: work them concurrently, each in order.
            results = await asyncio.gather(
                *(self._partition(tp, records) for tp, records in batch.items())
            )
            offsets = {tp: off for tp, off in results if off is not None}
            if offsets:
                await self._commit(offsets)

    async def _partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[TopicPartition, int | None]:
        """Process one partition's records in order; return the offset to commit."""
        next_offset: int | None = None
        for record in records:
            if not await self._process(record):
                # Still failing after the retries: come back to this record later.
                self.consumer.seek(tp, record.offset)
                await asyncio.sleep(min(self.retry_backoff_s * 10, 5.0))
                break
            next_offset = record.offset + 1
        return tp, next_offset

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Apply one record exactly once; True when done with it (applied, skipped or
        dead-lettered), False when transient errors outlasted the retries."""
        try:
            envelope = Envelope.from_bytes(record.value)
        except InvalidEvent as e:
            return await self._dead_letter(record, e.reason)
        if not self.accepts(envelope):
            return True
        with event_context(envelope.complaint_id, str(envelope.event_id)):
            for attempt in range(self.max_retries + 1):
                try:
                    applied = await self._apply(envelope)
                except asyncio.CancelledError:
                    raise
                except PoisonEvent as e:
                    return await self._dead_letter(record, f"{self.name}: {e}")
                except Exception as e:
                    if not is_transient(e):
                        log.exception("event handler failed; dead-lettering")
                        return await self._dead_letter(record, f"{self.name}: {e!r}")
                    log.warning(
                        "transient error applying event",
                        extra={"attempt": attempt + 1, "error": repr(e)},
                    )
                    await asyncio.sleep(self.retry_backoff_s * (2**attempt))
                    continue
                if self.metrics:
                    (self.metrics.applied if applied else self.metrics.duplicates).labels(
                        self.name
                    ).inc()
                faults.point("consumer.after_db_commit")
                return True
        return False

    async def _apply(self, envelope: Envelope) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f'INSERT INTO "{self.schema}".processed_events (consumer, event_id)'
                " VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                self.name, envelope.event_id,
            )
            if inserted is None:
                return False  # applied before: a redelivery
            await self.handler(conn, envelope)
            return True

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
                topics.DEAD_LETTER, json.dumps(body).encode(), key=record.key,
                headers=[("reason", reason[:500].encode())],
            )
        except KafkaError as e:
            log.warning("dead-letter publish failed", extra={"error": repr(e)})
            return False
        log.error("event dead-lettered", extra={"reason": reason, "offset": record.offset})
        if self.metrics:
            self.metrics.dead_lettered.labels(self.name).inc()
        return True

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError:
            # A rebalance took the partitions away; their new owner re-reads from the
            # last committed offset and the dedupe records absorb the repeats.
            log.info("offset commit lost to a rebalance")
        except KafkaError as e:
            log.warning("offset commit failed", extra={"error": repr(e)})
