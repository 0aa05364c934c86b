-- The trace context of the change that wrote the row (W3C headers: traceparent and
-- maybe tracestate; awasi/tracing.py). The relay publishes the row in a span that is
-- its child and sends that span as the `traceparent` Kafka header. NULL: no trace.
-- Numbered in its release's migration range, not below 0100: a backbone migration is
-- applied to every service schema, so its number must collide with none of theirs.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
