"""A stand-in for the Kafka record the idempotent consumer reads, for tests that hand
chunks to ``IdempotentConsumer._process_chunk`` directly (the broker is exercised
elsewhere; these tests are about what the consumer does with a chunk)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeRecord:
    """What the consumer reads of a record: value, key, position and headers."""

    value: bytes
    key: bytes = b"k"
    topic: str = "t"
    partition: int = 0
    offset: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()
