"""The router's fast path: a chunk's consecutive ``complaint.submitted`` events are
routed set-based (one statement for the tickets and their timelines, one for the
outbox), with exactly the effects of routing them one by one, in the chunk's order;
a poison submission in a run still fails alone."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from awasi import tracing
from awasi.db import create_pool, migrate_schema
from awasi.events.chunked import runs
from awasi.events.consumer import IdempotentConsumer
from awasi.events.envelope import Envelope
from awasi.events.kafka import make_producer
from awasi.events.payloads import ComplaintSupported
from awasi.settings import Settings
from services.router import app as router_app
from tests.support.kafka import read_topic
from tests.support.records import FakeRecord
from tests.support.router import event, submitted, test_catalog


def _record(envelope: Envelope, offset: int) -> FakeRecord:
    return FakeRecord(envelope.to_bytes(), envelope.complaint_id.encode(), "awasi.intake.v1",
                      0, offset)


def _consumer(pool: asyncpg.Pool, producer: Any = None) -> IdempotentConsumer:
    handler, accepts = router_app.event_handling(test_catalog())
    return IdempotentConsumer(name="router", schema="router", pool=pool, consumer=None,  # type: ignore[arg-type]
                              producer=producer, handler=handler, accepts=accepts,
                              retry_backoff_s=0.01)


async def _migrated_pool(database_url: str) -> asyncpg.Pool:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate_schema(conn, "router", router_app.migrations())
    return pool


def test_runs_group_only_consecutive_events_of_a_set_based_type() -> None:
    a, b, c, d, e = (submitted("MDN", "jalan-rusak", f"Jalan {i}.") for i in range(5))
    s1 = event(ComplaintSupported(support_count=2), a.complaint_id, "intake")
    s2 = event(ComplaintSupported(support_count=3), a.complaint_id, "intake")
    got = [(kind, [x.event_id for x in run])
           for kind, run in runs([a, b, s1, s2, c, d, e], {"complaint.submitted": None})]
    assert got == [("complaint.submitted", [a.event_id, b.event_id]),
                   (None, [s1.event_id]), (None, [s2.event_id]),
                   ("complaint.submitted", [c.event_id, d.event_id, e.event_id])]
    assert list(runs([], {"complaint.submitted": None})) == []


def _same_as(env: Envelope) -> Envelope:
    """The same submission under another complaint id (for the one-by-one twin)."""
    return Envelope.build(env.typed_payload(), complaint_id=str(uuid.uuid4()),
                          producer="intake", occurred_at=env.occurred_at)


async def _effects(pool: asyncpg.Pool, complaint_id: str) -> dict[str, Any]:
    """A ticket, its timeline and its outbox events, without ids and stamps."""
    t = dict(await pool.fetchrow("SELECT * FROM router.tickets WHERE complaint_id = $1",
                                 complaint_id))
    timeline = [dict(r) for r in await pool.fetch(
        "SELECT kind, occurred_at, actor, agency, data FROM router.timeline"
        " WHERE ticket_id = $1 ORDER BY id", t["id"])]
    events = [{k: v for k, v in r["envelope"].items() if k not in ("event_id", "complaint_id")}
              for r in await pool.fetch("SELECT envelope FROM router.outbox WHERE key = $1"
                                        " ORDER BY id", complaint_id)]
    for k in ("id", "complaint_id", "created_at", "updated_at"):
        t.pop(k)
    return {"ticket": t, "timeline": timeline, "events": events}


async def test_a_chunk_routes_set_based_with_the_effects_of_one_by_one(database_url: str) -> None:
    pool = await _migrated_pool(database_url)
    try:
        by_rule = submitted("MDN", "jalan-rusak", "Lubang di jalan.", photo_ids=("p1", "p2"))
        by_keyword = submitted("MDN", "lainnya", "Sampah menumpuk di pasar.", title="Pasar")
        to_triage = submitted("SRG", "lainnya", "Tidak ada aturan untuk ini.")
        # A redelivery under a new event id (intake's outbox replayed), in the same run.
        again = Envelope.build(by_rule.typed_payload(), complaint_id=by_rule.complaint_id,
                               producer="intake")
        # A support of a ticket made earlier in the same chunk, between two runs.
        support = event(ComplaintSupported(support_count=3), by_keyword.complaint_id, "intake")
        later = submitted("MKS", "jalan-rusak", "Jalan berlubang.")
        chunk = [by_rule, by_keyword, to_triage, again, support, later]

        consumer = _consumer(pool)
        records = [_record(e, i) for i, e in enumerate(chunk)]
        assert await consumer._process_chunk(records) is True  # noqa: SLF001
        # The same submissions, one per chunk: the one-by-one effects.
        twins = {e.event_id: _same_as(e) for e in (by_rule, by_keyword, to_triage, later)}
        for i, twin in enumerate(twins.values()):
            assert await consumer._process_chunk([_record(twin, 100 + i)]) is True  # noqa: SLF001

        assert await pool.fetchval(
            "SELECT count(*) FROM router.tickets WHERE complaint_id = ANY($1::text[])",
            [e.complaint_id for e in chunk]) == 4, "one ticket per complaint"
        for original, twin in twins.items():
            env = next(e for e in chunk if e.event_id == original)
            mine, theirs = (await _effects(pool, env.complaint_id),
                            await _effects(pool, twin.complaint_id))
            if env is by_keyword:
                assert mine["ticket"].pop("support_count") == 3, "the support saw its ticket"
                theirs["ticket"].pop("support_count")
            assert mine == theirs, env.payload["tracking_code"]
        for env in (by_rule, by_keyword, to_triage, later):
            # The routing event says what the ticket holds.
            effects = await _effects(pool, env.complaint_id)
            t, [routed] = effects["ticket"], effects["events"]
            assert routed["seq"] == t["seq"] == 1
            assert {k: v and datetime.fromisoformat(v)
                    for k, v in routed["payload"]["deadlines"].items()} == {
                "acknowledge_by": t["acknowledge_by"], "resolve_by": t["resolve_by"],
                "triage_by": t["triage_by"], "dispute_until": None}
            assert routed["payload"].get("agency") == t["agency"]
        assert (await _effects(pool, by_rule.complaint_id))["ticket"]["photo_ids"] == ["p1", "p2"]
        assert (await _effects(pool, to_triage.complaint_id))["ticket"]["status"] == "triage"

        # The routing events went out in the chunk's order, one per new ticket.
        keys = [r["key"] for r in await pool.fetch(
            "SELECT key FROM router.outbox WHERE key = ANY($1::text[]) ORDER BY id",
            [e.complaint_id for e in chunk])]
        assert keys == [by_rule.complaint_id, by_keyword.complaint_id,
                        to_triage.complaint_id, later.complaint_id]
        assert await pool.fetchval(
            "SELECT count(*) FROM router.processed_events WHERE event_id = ANY($1::uuid[])",
            [e.event_id for e in chunk]) == len(chunk)
        # Redelivered as a whole: nothing changes.
        assert await consumer._process_chunk(records) is True  # noqa: SLF001
        assert await pool.fetchval(
            "SELECT count(*) FROM router.outbox WHERE key = ANY($1::text[])",
            [e.complaint_id for e in chunk]) == 4
    finally:
        await pool.close()


async def test_a_poison_submission_in_a_run_fails_alone(database_url: str,
                                                        settings: Settings) -> None:
    pool = await _migrated_pool(database_url)
    producer = make_producer(settings)
    await producer.start()
    try:
        before = submitted("MDN", "jalan-rusak", "Sebelum.")
        poison = submitted("XXX", "jalan-rusak", "Kota yang tidak ada.")
        after = submitted("MDN", "jalan-rusak", "Sesudah.")
        consumer = _consumer(pool, producer)
        chunk = [_record(e, i) for i, e in enumerate((before, poison, after))]
        assert await consumer._process_chunk(chunk) is True  # noqa: SLF001
        rows = await pool.fetch("SELECT complaint_id FROM router.tickets")
        assert {r["complaint_id"] for r in rows} == {before.complaint_id, after.complaint_id}
        assert await pool.fetchval(
            "SELECT count(*) FROM router.processed_events WHERE event_id = $1",
            poison.event_id) == 0
        assert await pool.fetchval("SELECT count(*) FROM router.outbox") == 2
        dead = await read_topic(settings.require_kafka(), "awasi.deadletter.v1",
                                until=lambda m: any(str(poison.event_id) in d["value"]
                                                    for d in m))
        reasons = [d["reason"] for d in dead if str(poison.event_id) in d["value"]]
        assert reasons == ["router: unknown region 'XXX'"], reasons
    finally:
        await producer.stop()
        await pool.close()


async def test_each_complaint_of_a_set_based_run_keeps_its_own_trace(database_url: str) -> None:
    # Three submissions, each sent in a trace of its own (the traceparent header the
    # relay writes), routed in one set-based run: each routing event carries its own
    # complaint's trace on, and the run's shared work is a span linked to all three.
    exporter = InMemorySpanExporter()
    provider = tracing.sdk_provider("router")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pool = await _migrated_pool(database_url)
    try:
        chunk = [submitted("MDN", "jalan-rusak", f"Jalan rusak nomor {i}.") for i in range(3)]
        traces = {e.complaint_id: f"{i + 1:032x}" for i, e in enumerate(chunk)}
        records = [dataclasses.replace(_record(e, i), headers=(
            ("traceparent", f"00-{traces[e.complaint_id]}-{i + 1:016x}-01".encode()),))
            for i, e in enumerate(chunk)]
        with tracing.use(provider):
            assert await _consumer(pool)._process_chunk(records) is True  # noqa: SLF001
        rows = await pool.fetch(
            "SELECT key, trace_context FROM router.outbox WHERE key = ANY($1::text[])",
            list(traces))
        assert len(rows) == 3
        for r in rows:
            context = r["trace_context"]
            assert context is not None, r["key"]
            assert context["traceparent"].split("-")[1] == traces[r["key"]], r["key"]
        spans = exporter.get_finished_spans()
        routes = [s for s in spans if s.name == "route complaint"]
        assert sorted(format(s.context.trace_id, "032x") for s in routes) == sorted(
            traces.values())
        batch = [s for s in spans if s.name == "apply complaint.submitted run"]
        assert len(batch) == 1
        assert sorted(format(link.context.trace_id, "032x") for link in batch[0].links) == \
            sorted(traces.values())
    finally:
        await pool.close()
