"""A second client reads the event stream: librdkafka (confluent-kafka), not the
services' aiokafka, checks every message of every topic against docs/asyncapi.yaml
with jsonschema alone, after one complaint's whole life through the public APIs:
submitted at intake, acknowledged, answered and resolved at the router, rated by the
citizen, a finding by the panel, an audit checkpoint; plus a poison message, so the
dead-letter topic is read too. What a consumer in another language would see.

Each service also serves its own part of the document at ``/asyncapi.yaml``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from awasi.events import topics
from awasi.events.asyncapi import service_document
from awasi.identity import add_user
from awasi.settings import Settings
from tests.support.asyncapi import channel_of, load_document, message_validator, validator_at
from tests.support.services import running_service

pytestmark = pytest.mark.timeout(240)

POISON_KEY = f"poison-{uuid.uuid4()}"


async def eventually(probe: Any, what: str, within: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while not (value := await probe()):
        assert asyncio.get_running_loop().time() < deadline, f"no {what}"
        await asyncio.sleep(0.1)
    return value


def read_all(bootstrap: str, done: Any, within: float = 90.0) -> list[dict[str, Any]]:
    """Every record of every topic from the beginning, with librdkafka, until
    ``done(records)`` holds and a further second brings nothing new (blocking: run
    in a thread, the services share this event loop)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"second-{uuid.uuid4()}",
                         "enable.auto.commit": False, "client.id": "awasi-second-client"})
    try:
        metadata = consumer.list_topics(timeout=10)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING)
                         for t in topics.ALL for p in metadata.topics[t].partitions])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                if done(records):
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 1.0:
                        return records
                continue
            quiet_since = None
            if message.error():
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                continue
            records.append({
                "topic": message.topic(), "partition": message.partition(),
                "offset": message.offset(),
                "key": message.key().decode() if message.key() is not None else None,
                "headers": {k: v.decode() for k, v in (message.headers() or [])},
                "value": json.loads(message.value()),
            })
        raise AssertionError(f"stream incomplete: {sorted(_types(records))}")
    finally:
        consumer.close()


def _is_poison(record: dict[str, Any]) -> bool:
    # The poison itself (not an event, by design); its dead letters are checked.
    return record["key"] == POISON_KEY and record["topic"] != topics.DEAD_LETTER


def _types(records: list[dict[str, Any]]) -> set[str]:
    return {"deadletter" if r["topic"] == topics.DEAD_LETTER else r["value"]["type"]
            for r in records if not _is_poison(r)}


EXPECTED = {"complaint.submitted", "complaint.routed", "ticket.acknowledged",
            "ticket.responded", "ticket.resolved", "complaint.feedback_given",
            "finding.recorded", "audit.checkpoint", "deadletter"}


async def test_every_message_of_a_complaints_life_matches_the_asyncapi_document(
        settings: Settings) -> None:
    document = load_document()
    async with running_service("intake", settings) as intake, \
            running_service("router", settings) as router, \
            running_service("oversight", settings) as oversight:
        # Each service serves its own topics' document, what the models generate.
        for name, client, own in (
                ("intake", intake, {topics.INTAKE}),
                ("router", router, {topics.ROUTER}),
                ("oversight", oversight, {topics.OVERSIGHT, topics.AUDIT})):
            r = await client.get("/asyncapi.yaml")
            assert r.status == 200 and r.content_type == "application/yaml"
            text = await r.text()
            assert text == service_document(name)
            served = load_document(text)
            assert {c["address"] for c in served["channels"].values()} == \
                own | {topics.DEAD_LETTER}
            for message, body in served["components"]["messages"].items():
                assert body == document["components"]["messages"][message]

        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            await add_user(pool, username="pupr.stream", password="rahasia-123",
                           role="staff", agency="MDN-PUPR")
            await add_user(pool, username="panel.stream", password="rahasia-123",
                           role="panel")
            await add_user(pool, username="panel.stream2", password="rahasia-123",
                           role="panel")
        finally:
            await pool.close()

        r = await intake.post("/api/v1/complaints", json={
            "region": "MDN", "category": "jalan-rusak", "privacy": "named",
            "reporter": {"name": "Siti Rahmawati", "phone": "+6281234567890"},
            "description": "Jalan berlubang besar di Jl. Gatot Subroto, sudah dua bulan."})
        assert r.status == 201, await r.text()
        receipt = await r.json()
        code = receipt["tracking_code"]

        async def logged_in(client: Any, username: str) -> dict[str, str]:
            r = await client.post("/api/v1/auth/login",
                                  json={"username": username, "password": "rahasia-123"})
            assert r.status == 200, await r.text()
            client.session.cookie_jar.clear()
            return {"Authorization": f"Bearer {(await r.json())['token']}"}

        staff = await logged_in(router, "pupr.stream")
        panel = await logged_in(oversight, "panel.stream")

        async def ticket() -> Any:
            r = await router.get("/api/v1/tickets", params={"tracking_code": code},
                                 headers=staff)
            assert r.status == 200, await r.text()
            return (await r.json())["tickets"]

        (t,) = await eventually(ticket, "ticket at the router")
        for action, body in (("acknowledge", None),
                             ("respond", {"message": "Tim kami akan menambal besok."}),
                             ("resolve", {"note": "Lubang sudah ditambal."})):
            r = await router.post(f"/api/v1/tickets/{t['id']}/{action}", json=body,
                                  headers=staff)
            assert r.status == 200, (action, await r.text())

        async def resolved_at_intake() -> bool:
            r = await intake.get(f"/api/v1/complaints/{code}")
            return r.status == 200 and (await r.json())["status"] == "resolved"

        await eventually(resolved_at_intake, "resolution back at intake")
        r = await intake.post(f"/api/v1/complaints/{code}/feedback",
                              json={"secret": receipt["secret"], "rating": 4})
        assert r.status == 200, await r.text()

        async def case_at_oversight() -> bool:
            r = await oversight.get(f"/api/v1/cases/{code}/timeline", headers=panel)
            return r.status == 200

        await eventually(case_at_oversight, "the case at oversight")
        r = await oversight.post(f"/api/v1/cases/{code}/findings", headers=panel, json={
            "outcome": "no_maladministration", "published": False,
            "recommendation": "Pertahankan waktu tanggap di bawah tiga hari."})
        assert r.status == 201, await r.text()
        # A draft until a second member confirms it; then finding.recorded goes out.
        second = await logged_in(oversight, "panel.stream2")
        r = await oversight.post(f"/api/v1/findings/{(await r.json())['id']}/confirm",
                                 headers=second)
        assert r.status == 200, await r.text()

        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("UPDATE oversight.jobs SET next_at = now() "
                               "WHERE name = 'audit_checkpoint'")
        finally:
            await conn.close()

        # A message that is no event: both consumers of the intake topic dead-letter it.
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        producer.produce(topics.INTAKE, value=b'{"type": "complaint.submitted"}',
                         key=POISON_KEY.encode())
        assert await asyncio.to_thread(producer.flush, 10) == 0

        def complete(records: list[dict[str, Any]]) -> bool:
            dead = [r for r in records if r["topic"] == topics.DEAD_LETTER]
            return EXPECTED <= _types(records) and len(dead) >= 2

        records = await asyncio.to_thread(read_all, settings.kafka_bootstrap, complete)
    poison = [r for r in records if _is_poison(r)]
    assert len(poison) == 1
    records = [r for r in records if not _is_poison(r)]

    assert EXPECTED <= _types(records)
    complaint_ids = {r["value"]["complaint_id"] for r in records
                     if r["value"].get("type") == "complaint.submitted"
                     and r["value"]["payload"]["tracking_code"] == code}
    (complaint_id,) = complaint_ids
    checked = 0
    for record in records:
        where = (record["topic"], record["partition"], record["offset"])
        channel = channel_of(document, record["topic"])
        if record["topic"] == topics.DEAD_LETTER:
            name = "deadletter"
            validator_at(document, f"/components/messages/{name}/headers").validate(
                record["headers"])
            assert record["value"]["key"] == POISON_KEY, where
        else:
            value = record["value"]
            name = f"{value['type']}.v{value['version']}"
            validator_at(document, f"/components/messages/{name}/headers").validate(
                record["headers"])
            # The key is the envelope's complaint id; this complaint's, or the audit
            # checkpoints' nil UUID.
            assert record["key"] == value["complaint_id"], where
            assert value["complaint_id"] in (complaint_id, str(uuid.UUID(int=0))), where
        assert name in channel["messages"], (where, name)
        errors = [f"{e.json_path}: {e.message}"
                  for e in message_validator(document, name).iter_errors(record["value"])]
        assert errors == [], (where, name, errors)
        checked += 1
    assert checked >= len(EXPECTED)
    # Nothing of the reporter on any topic.
    everything = json.dumps([r["value"] for r in records])
    assert "Siti" not in everything and "6281234567890" not in everything
