"""OpenTelemetry tracing: one trace per complaint, across HTTP, the outbox and Kafka.

What is traced, and how the context travels (docs/ARCHITECTURE.md, "Tracing"):

- An HTTP request joins the caller's W3C ``traceparent`` or starts a trace
  (``awasi.web.tracing``); so does a Telegram update, whose context is stored with it
  in the webhook's inbox.
- A state change writes its trace context with each outbox row (``carrier()``); the
  relay publishes the row in a PRODUCER span that is a child of that context and sends
  the span's context as the ``traceparent`` Kafka header (``relay_span``).
- A consumer applies each event in a CONSUMER span that is a child of the header's
  context (``consumer_span``); the outbox rows it writes carry that span on.

Why the propagation is written by hand and not by opentelemetry-instrumentation-
aiokafka: the instrumentation wraps ``AIOKafkaProducer.send`` and injects the context
current *at the send*; here the send happens in the relay, long after the request
that caused the event has finished, in a loop that serves every complaint. The context
has to be stored with the outbox row and restored by the relay, which only the
propagator API can do.

Which tracer: each service's app holds its own ``TracerProvider`` (``keys.TRACER_PROVIDER``),
so tests can run the three services in one process, each with its own provider. The
entry points (request middleware, relay, consumer, scheduler, Telegram inbox) put the
service's tracer into the context (``use``); the spans below them (``span``) take it
from there. Outside any entry point the tracer is the API's no-op one.

Cost when off: without ``OTEL_*`` configuration the provider is the API's no-op one:
no span is recorded or exported; a caller's ``traceparent`` is still passed on (the
no-op tracer returns the parent's non-recording span), so logs carry its trace id.

Privacy: span attributes come from the allow-lists in this module and in
``awasi.web.tracing`` (ids, event types, routes, statuses), never from payloads, URLs,
headers or SQL parameters: no personal data leaves in a span.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# W3C Trace Context only (``traceparent``/``tracestate``): no baggage, which could
# carry whatever a caller puts in it onto our topics.
_PROPAGATOR = TraceContextTextMapPropagator()
SCOPE = "awasi"
_NOOP = trace.NoOpTracer()
_tracer: contextvars.ContextVar[Tracer] = contextvars.ContextVar("awasi_tracer", default=_NOOP)

# Values of a span attribute that name an event (never its payload).
EventAttrs = Mapping[str, str | int]


def enabled_by_env(env: Mapping[str, str] | None = None) -> bool:
    """True when the standard ``OTEL_*`` variables ask for OTLP export: an OTLP endpoint
    is set or ``OTEL_TRACES_EXPORTER=otlp``; never with ``OTEL_TRACES_EXPORTER=none``
    or ``OTEL_SDK_DISABLED=true``."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_process(service: str, *, queries: bool = False) -> TracerProvider:
    """For ``awasi serve``: the process's provider, from the ``OTEL_*`` variables.

    Configured: an SDK provider (``sdk_provider``) with a
    batching OTLP/HTTP exporter, made the global provider; with ``queries``
    (``AWASI_TRACE_QUERIES``) asyncpg is instrumented too (a span per query, SQL text
    only: parameters are never captured). Not configured:
    the API's no-op provider, and nothing is instrumented."""
    if not enabled_by_env():
        return trace.NoOpTracerProvider()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = sdk_provider(service)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Off unless asked: on the 2-core machine a span per query multiplied the end-to-end
    # latency at the same CPU per complaint (a wait, probably the exporter's thread
    # holding the GIL while it encodes twice the spans; not verified) - docs/BENCHMARKS.md.
    if queries:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        # Process-wide (it patches asyncpg's Connection): only here, in the entry point
        # of a one-service process, never in an app factory tests build several times.
        AsyncPGInstrumentor().instrument(tracer_provider=provider)
    return provider


def sdk_provider(service: str) -> SdkTracerProvider:
    """An SDK ``TracerProvider`` for ``service`` with no processor yet (tests add an
    in-memory one). Its sampler is ``OTEL_TRACES_SAMPLER``'s when that is set (the SDK
    reads it), else parent-based, where a database query outside any traced work (a
    relay poll, the scheduler's sweep) starts no trace of its own."""
    name = os.environ.get("OTEL_SERVICE_NAME") or f"awasi-{service}"
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(
        root=_RootSampler())
    return SdkTracerProvider(resource=Resource.create({"service.name": name}),
                             sampler=sampler)


class _RootSampler(Sampler):
    """Samples every root span except a lone database query (asyncpg's instrumentation
    makes one for every query, also for the background loops' polling)."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str,
                      kind: Any = None, attributes: Any = None, links: Any = None,
                      trace_state: Any = None) -> SamplingResult:
        if attributes and ("db.system" in attributes or "db.system.name" in attributes):
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "AwasiRoot"


def tracer_of(provider: TracerProvider) -> Tracer:
    return provider.get_tracer(SCOPE)


@contextlib.contextmanager
def use(provider: TracerProvider) -> Iterator[Tracer]:
    """Make ``provider``'s tracer the one ``span`` uses in this context."""
    token = _tracer.set(tracer_of(provider))
    try:
        yield _tracer.get()
    finally:
        _tracer.reset(token)


def bind(provider: TracerProvider) -> None:
    """Like ``use``, for the rest of the current task (a background loop's first line)."""
    _tracer.set(tracer_of(provider))


def current_tracer() -> Tracer:
    return _tracer.get()


@contextlib.contextmanager
def span(name: str, attributes: EventAttrs | None = None, *,
         context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
         links: Sequence[trace.Link] = (),
         ) -> Iterator[Span]:
    """A span of the current service's tracer, current inside the block. ``attributes``
    must be ids, types or counts (see the module's note on privacy). An exception
    marks it failed with its type only: its message may quote data."""
    with _tracer.get().start_as_current_span(
            name, context=context, kind=kind, attributes=dict(attributes or {}),
            links=links, record_exception=False, set_status_on_exception=False) as s:
        try:
            yield s
        except BaseException as e:
            failed([s], e)
            raise


@contextlib.contextmanager
def batch_span(name: str, carriers: Sequence[Mapping[str, str] | None],
               attributes: EventAttrs | None = None) -> Iterator[Span]:
    """Work done once for several events, each in a trace of its own (a set-based
    step): a span in a trace of its own, linked to each event's trace (OpenTelemetry's
    answer to a span with many parents), so its queries and time are visible from
    every one of them."""
    links = []
    for stored in carriers:
        ctx = extract(stored)
        if ctx is not None:
            span_context = trace.get_current_span(ctx).get_span_context()
            if span_context.is_valid:
                links.append(trace.Link(span_context))
    with span(name, attributes, context=Context(), links=links) as s:
        yield s


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers (``traceparent``, maybe ``tracestate``),
    to store with an outbox or inbox row; None outside any trace."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    return headers or None


def extract(headers: Mapping[str, str] | None) -> Context | None:
    """The context stored by ``carrier`` (or sent by a caller); None for none."""
    if not headers:
        return None
    return _PROPAGATOR.extract(dict(headers))


def kafka_headers(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka record headers as a text carrier (the trace headers only)."""
    return {k: v.decode("latin-1") for k, v in headers or ()
            if k in ("traceparent", "tracestate") and v is not None}


def trace_id() -> str | None:
    """The current trace id (32 hex digits), for log lines; None outside any trace."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def event_attributes(event_type: str, event_id: Any, topic: str | None = None,
                     ) -> dict[str, str]:
    """The allow-listed attributes of an event's span: its type and id, the topic."""
    attrs = {"awasi.event_type": event_type, "messaging.message.id": str(event_id),
             "messaging.system": "kafka"}
    if topic:
        attrs["messaging.destination.name"] = topic
    return attrs


@contextlib.contextmanager
def consumer_span(topic: str, headers: Sequence[tuple[str, bytes]] | None,
                  event_type: str, event_id: Any, consumer: str) -> Iterator[Span]:
    """Apply one event in a CONSUMER span, a child of the producer's span named in
    the record's ``traceparent`` header (a new trace when it has none)."""
    attrs = event_attributes(event_type, event_id, topic)
    attrs["messaging.consumer.group.name"] = f"awasi.{consumer}"
    with span(f"process {topic}", attrs, context=extract(kafka_headers(headers)),
              kind=SpanKind.CONSUMER) as s:
        yield s


def relay_span(topic: str, stored: Mapping[str, str] | None, event_type: str,
               event_id: Any) -> Span:
    """A PRODUCER span for publishing one outbox row, a child of the context stored
    with the row; the caller ends it once the broker acknowledged."""
    return _tracer.get().start_span(
        f"publish {topic}", context=extract(stored), kind=SpanKind.PRODUCER,
        attributes=event_attributes(event_type, event_id, topic))


def failed(spans: Sequence[Span], error: BaseException) -> None:
    """Mark ``spans`` as failed with ``error``'s type (never its message, which may
    quote data)."""
    for s in spans:
        s.set_status(Status(StatusCode.ERROR, type(error).__name__))


def headers_of(s: Span) -> list[tuple[str, bytes]]:
    """``s``'s context as Kafka record headers (none for an invalid span)."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(s))
    return [(k, v.encode("latin-1")) for k, v in headers.items()]
