"""One complaint is one connected trace through intake, the relay, the router and
oversight (OpenTelemetry; awasi/tracing.py, docs/ARCHITECTURE.md "Tracing").

The three services run in this process through their app factories, each with its
own SDK tracer provider (resource ``service.name`` awasi-intake/-router/-oversight),
all three exporting to one in-memory exporter; the broker and the database are the
real embedded ones, so the context really crosses the outbox table and the Kafka
``traceparent`` header.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from awasi import tracing
from awasi.db import create_pool
from awasi.jsonlog import JsonFormatter
from awasi.settings import Settings
from awasi.web import keys
from awasi.web.app import background
from services.intake.telegram import inbox
from services.intake.telegram.inbox import Inbox
from services.oversight.scheduler import Scheduler
from services.router.app import http_client
from services.router.desk import fetch_reporter
from tests.support.intake import complaint
from tests.support.otlp import ExportedSpan, collector
from tests.support.oversight import (
    ACK_DUE,
    MONDAY_9,
    feed,
    make_ctx,
    new_cid,
    open_pool,
    routed,
    submitted,
)
from tests.support.services import ServiceProcess, running_service
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(180)

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"

# The whole path of a complaint, from the timeline back to the request.
CHAIN = ["case timeline", "process awasi.router.v1", "publish awasi.router.v1",
         "route complaint", "process awasi.intake.v1", "publish awasi.intake.v1",
         "POST /api/v1/complaints"]


class Lines(logging.Handler):
    """The JSON log lines intake writes, as objects."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("intake"))
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("services.intake.domain")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _service(s: ReadableSpan) -> str:
    return str(s.resource.attributes["service.name"])


def _chain_to_root(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans}
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


async def test_one_complaint_is_one_connected_trace_through_the_three_services(
        settings: Settings, log_lines: Lines) -> None:
    exporter = InMemorySpanExporter()
    providers = {}
    for name in ("intake", "router", "oversight"):
        providers[name] = tracing.sdk_provider(name)
        providers[name].add_span_processor(SimpleSpanProcessor(exporter))
    body = complaint()  # named, with the reporter's name, phone and e-mail
    async with running_service("intake", settings,
                               tracer_provider=providers["intake"]) as intake, \
            running_service("router", settings, tracer_provider=providers["router"]), \
            running_service("oversight", settings, tracer_provider=providers["oversight"]):
        # A caller already in a trace: the complaint joins it.
        r = await intake.post("/api/v1/complaints", json=body,
                              headers={"traceparent": TRACEPARENT})
        assert r.status == 201, await r.text()
        joined = (await r.json())["tracking_code"]
        # A caller with none: the complaint starts its own.
        r = await intake.post("/api/v1/complaints", json=complaint(privacy="confidential"))
        assert r.status == 201, await r.text()

        def timelines() -> list[ReadableSpan]:
            return [s for s in exporter.get_finished_spans() if s.name == "case timeline"
                    and s.attributes.get("awasi.event_type") == "complaint.routed"]

        async def both_routed() -> list[ReadableSpan] | None:
            found = timelines()
            return found if len(found) >= 2 else None

        await eventually(both_routed, within=90, what="both complaints on oversight's timeline")
        spans = list(exporter.get_finished_spans())

    # The first complaint: one trace, the caller's, from the request to the timeline.
    ours = [s for s in spans if format(s.context.trace_id, "032x") == CALLER_TRACE]
    timeline = next(s for s in ours if s.name == "case timeline"
                    and s.attributes.get("awasi.event_type") == "complaint.routed")
    chain = _chain_to_root(timeline, ours)
    assert [s.name for s in chain] == CHAIN
    # Parent links intact all the way, and the root is the caller's span.
    root = chain[-1]
    assert root.kind == SpanKind.SERVER
    assert root.parent is not None and root.parent.is_remote
    assert format(root.parent.span_id, "016x") == CALLER_SPAN
    assert [_service(s) for s in chain] == [
        "awasi-oversight", "awasi-oversight", "awasi-router", "awasi-router",
        "awasi-router", "awasi-intake", "awasi-intake"]
    assert [s.kind for s in chain[1:3]] == [SpanKind.CONSUMER, SpanKind.PRODUCER]
    # Connected: every span of the trace hangs from another span of it (or the caller).
    ids = {s.context.span_id for s in ours}
    for s in ours:
        assert s.parent is not None
        assert s.parent.span_id in ids or format(s.parent.span_id, "016x") == CALLER_SPAN, s.name
    assert {_service(s) for s in ours} == {"awasi-intake", "awasi-router", "awasi-oversight"}

    # The second complaint: a trace of its own, begun at intake's request.
    other = next(s for s in timelines()
                 if format(s.context.trace_id, "032x") != CALLER_TRACE)
    other_trace = [s for s in spans if s.context.trace_id == other.context.trace_id]
    other_root = _chain_to_root(other, other_trace)[-1]
    assert other_root.name == "POST /api/v1/complaints"
    assert other_root.parent is None

    # The complaint's log line carries the trace id next to the complaint id.
    received = [line for line in log_lines.lines if line["msg"] == "complaint received"]
    assert len(received) == 2
    assert {line["trace_id"] for line in received} == {
        CALLER_TRACE, format(other.context.trace_id, "032x")}
    assert all(line["complaint_id"] for line in received)

    # No personal data, nor the complaint's words or its tracking code, in any span.
    private = [body["reporter"]["name"], "Siti", "5550", "1234", body["reporter"]["email"],
               "Rahmawati", body["description"], body["title"], "Merdeka", joined, "3.59"]
    for s in spans:
        values = " ".join(str(v) for v in (s.attributes or {}).values()) + " " + s.name
        for secret in private:
            assert secret not in values, (s.name, secret)
        for event in s.events:
            assert not any(secret in str(v) for v in (event.attributes or {}).values()
                           for secret in private)


async def test_awasi_serve_exports_by_otlp_one_trace_across_processes(
        database_url: str, broker: Any) -> None:
    # The three services as real `awasi serve` processes configured only by the
    # standard OTEL_* variables, exporting OTLP/HTTP to a collector in this test: one
    # complaint's trace crosses the three processes, from the request to the timeline.
    async with collector() as c:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": c.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
                "AWASI_TRACE_QUERIES": "true"}
        procs = [ServiceProcess(name, database_url, broker.bootstrap, extra_env=otel)
                 for name in ("intake", "router", "oversight")]
        try:
            for p in procs:
                p.start()
            for p in procs:
                await p.wait_healthy(60)
            body = complaint()
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{procs[0].url}/api/v1/complaints", json=body,
                                        headers={"traceparent": TRACEPARENT}) as r:
                    assert r.status == 201, await r.text()
                    code = (await r.json())["tracking_code"]

            def ours() -> list[ExportedSpan]:
                return [s for s in c.spans if s.trace_id == CALLER_TRACE]

            async def on_the_timeline() -> bool:
                return any(s.name == "case timeline"
                           and s.attributes.get("awasi.event_type") == "complaint.routed"
                           for s in ours())

            await eventually(on_the_timeline, within=90,
                             what="oversight's timeline span exported")
        finally:
            for p in procs:
                p.stop()
    spans = ours()
    by_id = {s.span_id: s for s in spans}
    timeline = next(s for s in spans if s.name == "case timeline"
                    and s.attributes.get("awasi.event_type") == "complaint.routed")
    chain = [timeline]
    while chain[-1].parent_span_id in by_id:
        chain.append(by_id[chain[-1].parent_span_id])
    assert [s.name for s in chain] == CHAIN
    assert chain[-1].parent_span_id == CALLER_SPAN
    assert [s.service for s in chain] == [
        "awasi-oversight", "awasi-oversight", "awasi-router", "awasi-router",
        "awasi-router", "awasi-intake", "awasi-intake"]
    # AWASI_TRACE_QUERIES: the routing's queries are spans of the trace (or, when the
    # complaint was routed in a run with others, of the run's span linked to the
    # trace), with the SQL text and never its parameters. (Intake's insert is a group
    # commit for many requests at once, in a task of its own: it belongs to no one trace.)
    runs = {s.span_id for s in c.spans if CALLER_TRACE in s.linked_traces}
    queries = [s for s in c.spans if ("db.system" in s.attributes
               or "db.system.name" in s.attributes)
               and (s.parent_span_id in by_id or s.parent_span_id in runs)]
    assert "awasi-router" in {s.service for s in queries}
    for s in c.spans:
        text = " ".join(str(v) for v in s.attributes.values()) + s.name
        for secret in ("Siti", "5550", "siti.rahma", body["description"], code):
            assert secret not in text, (s.name, secret)


def test_tracing_is_on_only_when_the_otel_variables_ask_for_export() -> None:
    assert not tracing.enabled_by_env({})
    assert tracing.enabled_by_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing.enabled_by_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/t"})
    assert tracing.enabled_by_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.enabled_by_env({"OTEL_TRACES_EXPORTER": "none",
                                       "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert not tracing.enabled_by_env({"OTEL_SDK_DISABLED": "true",
                                       "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})


def test_off_nothing_is_recorded_but_a_callers_trace_is_passed_on() -> None:
    # The no-op provider: no span is recorded, yet a caller's context still reaches
    # the outbox row (and so the Kafka header) and the log lines.
    provider = trace.NoOpTracerProvider()
    with tracing.use(provider), tracing.span("POST /x",
                                             context=tracing.extract({"traceparent": TRACEPARENT})
                                             ) as s:
        assert not s.is_recording()
        assert tracing.trace_id() == CALLER_TRACE
        assert tracing.carrier() == {"traceparent": TRACEPARENT}
    with tracing.use(provider), tracing.span("POST /x"):
        assert tracing.trace_id() is None
        assert tracing.carrier() is None


async def test_a_telegram_update_is_processed_in_the_trace_of_the_webhook_call(
        database_url: str) -> None:
    # The webhook stores the update with its call's trace context; the inbox worker
    # processes it later, in another task, as a child of that call.
    exporter = InMemorySpanExporter()
    provider = tracing.sdk_provider("intake")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pool = await create_pool(database_url, min_size=1, max_size=3)
    seen: list[str | None] = []

    async def handle(data: dict[str, Any]) -> None:
        seen.append(tracing.trace_id())

    try:
        with tracing.use(provider), tracing.span(
                "POST /telegram/webhook",
                context=tracing.extract({"traceparent": TRACEPARENT})) as call:
            assert await inbox.store_update(pool, 7001, 42, b'{"update_id": 7001}') == "stored"
        worker = Inbox(pool, handle, tracer_provider=provider, poll_s=0.05)
        async with background(worker.run(), "inbox"):
            async def handled() -> bool:
                return bool(seen)

            await eventually(handled, within=30, what="the update processed")
    finally:
        await pool.close()
    assert seen == [CALLER_TRACE]
    update = next(s for s in exporter.get_finished_spans() if s.name == "telegram update")
    assert update.parent is not None
    assert update.parent.span_id == call.get_span_context().span_id


async def test_a_deadline_breach_is_a_span_whose_events_carry_its_trace(
        database_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = tracing.sdk_provider("oversight")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pool = await open_pool(database_url)
    try:
        ctx, clock = make_ctx()
        scheduler = Scheduler(pool, ctx.catalog, clock)
        cid = new_cid()
        await feed(pool, ctx, submitted(cid, MONDAY_9), routed(cid, MONDAY_9, ACK_DUE, None))
        clock.set(ACK_DUE + timedelta(seconds=1))
        with tracing.use(provider):
            assert (await scheduler.sweep()).fired == 1
        rows = await pool.fetch(
            "SELECT event_type, trace_context FROM oversight.outbox"
            " WHERE key = $1 AND event_type IN ('deadline.breached', 'case.escalated')", cid)
    finally:
        await pool.close()
    breach = next(s for s in exporter.get_finished_spans() if s.name == "deadline breach")
    assert breach.parent is None  # a trace of its own, days after the request
    assert breach.attributes["awasi.deadline.kind"] == "acknowledge"
    assert breach.attributes["awasi.deadline.fired"] is True
    assert len(rows) == 2
    for row in rows:
        ctx_of_row = tracing.extract(row["trace_context"])
        assert ctx_of_row is not None
        parent = trace.get_current_span(ctx_of_row).get_span_context()
        assert parent.trace_id == breach.context.trace_id
        assert parent.span_id == breach.context.span_id


async def test_the_routers_call_to_intake_for_a_contact_carries_the_trace(
        settings: Settings) -> None:
    # The desk asks intake for a named reporter's contact: the maintained aiohttp
    # client instrumentation sends the traceparent, intake's request span is its
    # child, and the signed token in the query string is recorded nowhere.
    exporter = InMemorySpanExporter()
    providers = {name: tracing.sdk_provider(name) for name in ("intake", "router")}
    for p in providers.values():
        p.add_span_processor(SimpleSpanProcessor(exporter))
    async with running_service("intake", settings,
                               tracer_provider=providers["intake"]) as intake:
        r = await intake.post("/api/v1/complaints", json=complaint())
        assert r.status == 201
        complaint_id = (await r.json())["complaint_id"]
        router = web.Application()
        router[keys.SETTINGS] = dataclasses.replace(
            settings, intake_url=str(intake.make_url("")).rstrip("/"))
        router[keys.TRACER_PROVIDER] = providers["router"]
        session = http_client(router)
        await anext(session)  # the router's own cleanup_ctx generator opens it
        try:
            with tracing.use(providers["router"]), tracing.span("GET /tickets/{id}") as page:
                contact = await fetch_reporter(router, complaint_id)
        finally:
            await anext(session, None)
    assert contact is not None and contact["name"] == "Siti Rahmawati"
    spans = exporter.get_finished_spans()
    served = next(s for s in spans
                  if s.name == "GET /internal/v1/complaints/{complaint_id}/reporter")
    by_id = {s.context.span_id: s for s in spans}
    client = by_id[served.parent.span_id]  # type: ignore[union-attr]
    assert client.kind == SpanKind.CLIENT
    assert client.parent is not None
    assert client.parent.span_id == page.get_span_context().span_id
    for s in (served, client):
        values = " ".join(str(v) for v in (s.attributes or {}).values())
        assert "token" not in values and "Siti" not in values, s.attributes
