"""CPU cost of tracing per complaint hop, in one process, off and on.

One "hop" is what each service does for a complaint's event: a SERVER or CONSUMER
span with its attributes, an inner span (routing, timeline), the context written for
the outbox row (``carrier``), and the relay's PRODUCER span with its Kafka header.
Off is the API's no-op provider (what runs without ``OTEL_*``); on is the SDK with the
batching span processor, its exporter a no-op (the export's own cost is the OTLP
encoding and the POST, in the processor's thread: the e2e run shows it). Measured
with ``time.process_time`` (CPU of this process, so less sensitive to other load
than wall time), printed with the load average.

Run: ``.venv/bin/python bench/tracing_cost.py [--hops 20000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import (  # noqa: E402
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind  # noqa: E402

from awasi import tracing  # noqa: E402


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


CALLER = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def hops(provider: trace.TracerProvider, n: int, parent: dict[str, str] | None) -> float:
    start = time.process_time()
    with tracing.use(provider):
        for i in range(n):
            with tracing.span("process awasi.intake.v1",
                              tracing.event_attributes("complaint.submitted", i, "t"),
                              context=tracing.extract(parent), kind=SpanKind.CONSUMER):
                with tracing.span("route complaint", {"awasi.region": "MDN"}):
                    stored = tracing.carrier()
            relay = tracing.relay_span("awasi.router.v1", stored, "complaint.routed", i)
            tracing.headers_of(relay)
            relay.end()
    return (time.process_time() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hops", type=int, default=20000)
    args = parser.parse_args()
    off = trace.NoOpTracerProvider()
    on = tracing.sdk_provider("bench")
    on.add_span_processor(BatchSpanProcessor(_Discard()))
    cases = (("off, no caller's trace", off, None), ("off, a caller's trace passed on", off,
             CALLER), ("on", on, CALLER))
    for _, provider, parent in cases:
        hops(provider, 1000, parent)  # warm-up
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(3):
        for name, provider, parent in cases:
            results[name].append(hops(provider, args.hops, parent) * 1e6)
    on.shutdown()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for name, values in results.items():
        print(f"tracing {name}: {min(values):.1f} us CPU per hop (best of 3 x {args.hops};"
              f" all: {', '.join(f'{v:.1f}' for v in values)}); load average {load}")


if __name__ == "__main__":
    main()
