"""Backbone pieces on their own: settings, envelope validation, migrations, replay,
retention, transient retries, a poison event inside a chunk, JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from awasi import jsonlog
from awasi.cli import main as awasi_main
from awasi.db import Migration, TransientDatabaseError, create_pool, migrate_schema
from awasi.db.locks import session_advisory_lock
from awasi.db.migrate import MigrationError
from awasi.events.consumer import IdempotentConsumer, PoisonEvent
from awasi.events.envelope import Envelope, InvalidEvent
from awasi.events.kafka import make_producer
from awasi.events.payloads import ProbePing, registered_types
from awasi.events.relay import replay
from awasi.settings import Settings, SettingsError, setting_names
from tests.support import probe
from tests.support.kafka import read_topic
from tests.support.records import FakeRecord


def test_settings_parse_and_name_the_bad_variable() -> None:
    s = Settings.from_env({"AWASI_INTAKE_PORT": "9000", "AWASI_KAFKA_IDEMPOTENCE": "true"})
    assert s.intake_port == 9000 and s.kafka_idempotence is True
    with pytest.raises(SettingsError, match="AWASI_ROUTER_PORT"):
        Settings.from_env({"AWASI_ROUTER_PORT": "eighty"})
    with pytest.raises(SettingsError, match="AWASI_KAFKA_IDEMPOTENCE"):
        Settings.from_env({"AWASI_KAFKA_IDEMPOTENCE": "maybe"})
    with pytest.raises(SettingsError, match="AWASI_DATABASE_URL"):
        Settings.from_env({}).require_database()
    assert "AWASI_KAFKA_BOOTSTRAP" in setting_names()


def test_cli_reports_configuration_errors_by_name(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWASI_INTAKE_PORT", "x")
    assert awasi_main(["migrate"]) == 2
    assert "AWASI_INTAKE_PORT" in capsys.readouterr().err


def test_envelope_round_trip_and_validation() -> None:
    env = Envelope.build(ProbePing(seq=3), complaint_id="c-1", producer="probe")
    again = Envelope.from_bytes(env.to_bytes())
    assert again == env
    assert again.occurred_at.tzinfo is not None
    assert isinstance(again.typed_payload(), ProbePing)
    with pytest.raises(InvalidEvent, match="envelope"):
        Envelope.from_bytes(b"[]")
    raw = json.loads(env.to_bytes())
    raw["type"] = "no.such"
    with pytest.raises(InvalidEvent, match="unknown event type no.such v1"):
        Envelope.from_bytes(json.dumps(raw).encode())
    raw = json.loads(env.to_bytes())
    raw["occurred_at"] = "2026-11-23T10:00:00"  # naive: rejected
    with pytest.raises(InvalidEvent, match="occurred_at"):
        Envelope.from_bytes(json.dumps(raw).encode())
    raw = json.loads(env.to_bytes())
    raw["payload"]["extra"] = 1  # payloads are closed
    with pytest.raises(InvalidEvent, match="extra"):
        Envelope.from_bytes(json.dumps(raw).encode())


def test_every_design_event_type_is_registered() -> None:
    types = {t for t, _ in registered_types()}
    for expected in [
        "complaint.submitted", "complaint.info_added", "complaint.feedback_given",
        "complaint.withdrawn", "complaint.routed", "complaint.needs_triage",
        "ticket.acknowledged", "ticket.info_requested", "ticket.responded", "ticket.resolved",
        "ticket.transferred", "ticket.reopened", "deadline.warning", "deadline.breached",
        "case.escalated", "finding.recorded", "case.reopened",
    ]:
        assert expected in types


async def test_migrations_apply_once_under_concurrency_and_refuse_edits(database_url: str) -> None:
    migrations = [
        Migration(100, "0100_a.sql", "CREATE TABLE a (id int)"),
        Migration(101, "0101_b.sql", "CREATE TABLE b (id int); SELECT pg_sleep(0.2)"),
    ]
    conns = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(migrate_schema(c, "mtest", migrations) for c in conns)
        )
        assert sorted(len(r) for r in results) == [0, 0, 2], "applied exactly once"
        changed = [migrations[0], Migration(101, "0101_b.sql", "CREATE TABLE c (id int)")]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate_schema(conns[0], "mtest", changed)
    finally:
        for c in conns:
            await c.close()


async def test_pooled_connections_leave_no_session_lock_behind(database_url: str) -> None:
    """The pool skips asyncpg's reset query on release, so session advisory locks go
    through ``session_advisory_lock``: released after the block, and the connection
    closed (the server drops its locks) when the block is cancelled mid-wait."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    other = await asyncpg.connect(database_url)
    try:
        async def free(*key: int) -> bool:
            args = ", ".join(f"${i + 1}" for i in range(len(key)))
            got = await other.fetchval(f"SELECT pg_try_advisory_lock({args})", *key)
            if got:
                await other.execute(f"SELECT pg_advisory_unlock({args})", *key)
            return bool(got)

        async with pool.acquire() as conn, session_advisory_lock(conn, 7, 11):
            assert not await free(7, 11)
        assert await free(7, 11)

        # Cancelled while waiting for a lock that another session holds: whatever the
        # server did with the request, the connection is gone and holds nothing.
        await other.execute("SELECT pg_advisory_lock(42)")
        entered = asyncio.Event()

        async def waiter() -> None:
            async with pool.acquire() as conn:
                entered.set()
                async with session_advisory_lock(conn, 42):
                    raise AssertionError("must not get the lock")

        task = asyncio.ensure_future(waiter())
        await entered.wait()
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await other.execute("SELECT pg_advisory_unlock(42)")
        async with pool.acquire() as conn:  # a fresh connection, holding nothing
            assert await conn.fetchval("SELECT count(*) FROM pg_locks"
                                       " WHERE locktype = 'advisory'") == 0
        assert await free(42)
    finally:
        await other.close()
        await pool.close()


async def test_outbox_replay_and_retention(database_url: str) -> None:
    await probe.migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await probe.write_events(pool, range(5))
        old = datetime.now(UTC) - timedelta(days=30)
        await pool.execute("UPDATE probe.outbox SET sent_at = $1 WHERE id <= 2", old)
        await pool.execute("UPDATE probe.outbox SET sent_at = now() WHERE sent_at IS NULL")
        assert await replay(pool, "probe", datetime.now(UTC) - timedelta(hours=1)) == 3
        assert await pool.fetchval("SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL") == 3
        from awasi.events.relay import OutboxRelay

        relay = OutboxRelay(pool, None, "probe", retention=timedelta(days=7))  # type: ignore[arg-type]
        assert await relay.purge() == 2, "sent rows past the retention period are deleted"
        assert await pool.fetchval("SELECT count(*) FROM probe.outbox") == 3
    finally:
        await pool.close()


def test_cli_outbox_replay(database_url: str, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWASI_DATABASE_URL", database_url)
    assert awasi_main(["outbox", "replay", "--since", "6h", "--service", "intake"]) == 0
    assert "intake: 0 events queued" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        awasi_main(["outbox", "replay", "--since", "yesterday"])


async def test_transient_errors_are_retried_then_applied_once(database_url: str) -> None:
    await probe.migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    attempts = 0
    real = probe.handler_for("c1")

    async def flaky(conn: asyncpg.Connection, env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientDatabaseError("connection reset")
        await real(conn, env)

    try:
        consumer = IdempotentConsumer(name="probe", schema="probe", pool=pool,
                                      consumer=None, producer=None,  # type: ignore[arg-type]
                                      handler=flaky, max_retries=5, retry_backoff_s=0.01)
        env = Envelope.build(ProbePing(seq=1), complaint_id="c", producer="probe")
        assert await consumer._process(FakeRecord(env.to_bytes())) is True  # noqa: SLF001
        assert await consumer._process(FakeRecord(env.to_bytes())) is True  # noqa: SLF001
        assert attempts == 3, "two transient failures, one success, the repeat skipped"
        assert await pool.fetchval("SELECT times FROM probe.effects WHERE seq = 1") == 1
        # A failed attempt left nothing behind: the dedupe row rolled back with it.
        assert await pool.fetchval("SELECT count(*) FROM probe.processed_events") == 1
    finally:
        await pool.close()


async def test_poison_event_in_a_chunk_is_dead_lettered_alone(
    database_url: str, settings: Settings
) -> None:
    """The fast path (one transaction, no savepoints) rolls back on the poison event;
    the chunk runs again isolated: the others apply once (a repeat within the chunk
    too), the poison one goes to the dead-letter topic and leaves nothing behind."""
    await probe.migrate(database_url)
    await probe.ensure_probe_topic(settings)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    producer = make_producer(settings)
    await producer.start()
    marker = uuid.uuid4().hex
    real = probe.handler_for("c1")

    async def picky(conn: asyncpg.Connection, env: Envelope) -> None:
        await real(conn, env)  # its effect must roll back with the poison
        if env.payload["seq"] == 902:
            raise PoisonEvent(f"seq 902 is poison {marker}")

    try:
        consumer = IdempotentConsumer(name="probe", schema="probe", pool=pool,
                                      consumer=None, producer=producer,  # type: ignore[arg-type]
                                      handler=picky, retry_backoff_s=0.01)
        first, poison, last = (Envelope.build(ProbePing(seq=n), complaint_id="c",
                                              producer="probe") for n in (901, 902, 903))
        chunk = [FakeRecord(e.to_bytes()) for e in (first, first, poison, last)]
        assert await consumer._process_chunk(chunk) is True  # noqa: SLF001
        rows = await pool.fetch("SELECT seq, times FROM probe.effects WHERE seq > 900")
        assert {r["seq"]: r["times"] for r in rows} == {901: 1, 903: 1}
        assert await pool.fetchval(
            "SELECT count(*) FROM probe.processed_events WHERE event_id = $1",
            poison.event_id) == 0
        dead = await read_topic(settings.require_kafka(), "awasi.deadletter.v1",
                                until=lambda m: any(marker in d["reason"] for d in m))
        assert [d["reason"] for d in dead if marker in d["reason"]] == [
            f"probe: seq 902 is poison {marker}"]
    finally:
        await producer.stop()
        await pool.close()


def test_json_logs_carry_complaint_and_event_ids(capsys: pytest.CaptureFixture[str]) -> None:
    jsonlog.configure("intake", "INFO", True)
    try:
        event_id = str(uuid.uuid4())
        with jsonlog.event_context("complaint-9", event_id):
            logging.getLogger("awasi.test").info("applied", extra={"attempt": 2})
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["complaint_id"] == "complaint-9"
        assert line["event_id"] == event_id
        assert line["service"] == "intake" and line["msg"] == "applied" and line["attempt"] == 2
    finally:
        logging.getLogger().handlers.clear()
