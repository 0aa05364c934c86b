"""Reading topics in tests, as an outside observer would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 20.0,  # noqa: ASYNC109 - a deadline for the whole read
) -> list[dict[str, Any]]:
    """Read ``topic`` from the beginning until ``until(messages)`` holds; return the
    decoded JSON values (with ``_key`` and ``_headers`` added). Raises TimeoutError."""
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
                        messages.append(value)
    finally:
        await consumer.stop()
    return messages


async def read_all(bootstrap: str, topic: str, settle: float = 1.0) -> list[dict[str, Any]]:
    """Everything on ``topic`` now (reads until nothing new arrives for ``settle`` s)."""
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
