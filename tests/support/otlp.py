"""A tiny OTLP/HTTP trace collector on 127.0.0.1: what ``awasi serve`` exports when
``OTEL_EXPORTER_OTLP_ENDPOINT`` points at it, decoded with the OpenTelemetry protobuf
definitions (opentelemetry-proto). For tests and bench/e2e.py --tracing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    linked_traces: tuple[str, ...] = ()  # the traces a batch span is linked to


@dataclass
class Collector:
    url: str = ""
    spans: list[ExportedSpan] = field(default_factory=list)
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = ExportTraceServiceRequest.FromString(await request.read())
        self.requests += 1
        for resource_spans in body.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(ExportedSpan(
                        service=service, name=s.name, trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(), parent_span_id=s.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in s.attributes},
                        linked_traces=tuple(link.trace_id.hex() for link in s.links)))
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[Collector]:
    """Serve ``POST /v1/traces``; ``url`` is the value for OTEL_EXPORTER_OTLP_ENDPOINT."""
    c = Collector()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", c.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c.url = f"http://127.0.0.1:{port}"
    try:
        yield c
    finally:
        await runner.cleanup()


async def _serve_until_stopped(port: int) -> None:
    """``python -m tests.support.otlp PORT``: the collector in a process of its own (so
    decoding spans costs the measuring process nothing); on SIGTERM it prints
    ``{"spans": N, "traces": N, "requests": N}`` and exits."""
    import asyncio
    import json
    import signal

    c = Collector()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", c.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    print(json.dumps({"spans": len(c.spans), "traces": len({s.trace_id for s in c.spans}),
                      "requests": c.requests}), flush=True)


if __name__ == "__main__":
    import asyncio
    import sys

    asyncio.run(_serve_until_stopped(int(sys.argv[1])))
