"""Reading topics in tests, as an outside observer would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline for the whole read
) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``until(messages)`` holds; return the
    decoded JSON values (with ``_key``, ``_headers``, ``_raw``, ``_partition`` and
    ``_offset`` added). Raises TimeoutError."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(messages):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        value = json.loads(r.value) if r.value else {}
                        if isinstance(value, dict):
                            value["_key"] = r.key.decode() if r.key else None
                            value["_headers"] = {k: v.decode() for k, v in r.headers}
                            value["_raw"] = r.value.decode("utf-8", "replace") if r.value else ""
                            value["_partition"], value["_offset"] = r.partition, r.offset
                        messages.append(value)
    finally:
        await consumer.stop()
    return messages


async def read_all(bootstrap: str, topic: str, settle: float = 1.0) -> list[dict[str, Any]]:
    """Everything on ``topic`` now (reads until nothing new arrives for ``settle`` s):
    the decoded JSON values with ``_raw``, ``_key``, ``_partition`` and ``_offset``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    messages: list[dict[str, Any]] = []
    try:
        idle = 0.0
        while idle < settle:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                idle += 0.2
                continue
            idle = 0.0
            for records in batch.values():
                for r in records:
                    value = json.loads(r.value) if r.value else {}
                    if isinstance(value, dict):
                        value["_raw"] = r.value.decode("utf-8", "replace") if r.value else ""
                        value["_key"] = r.key.decode() if r.key else None
                        value["_partition"], value["_offset"] = r.partition, r.offset
                    messages.append(value)
    finally:
        await consumer.stop()
    return messages


async def publish(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str,
                            partitions: int) -> dict[int, int]:
    """The offsets ``group`` committed on each partition of ``topic`` (0 where it has
    committed none). Any error reading them propagates: a test that relies on them
    must not read a failure as "nothing committed"."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for p in range(partitions):
            out[p] = (await consumer.committed(TopicPartition(topic, p))) or 0
        return out
    finally:
        await consumer.stop()
