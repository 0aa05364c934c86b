-- The trace context of the webhook call that stored the update (awasi/tracing.py):
-- the inbox worker processes the update later, in the same trace.
ALTER TABLE intake.telegram_inbox ADD COLUMN trace_context jsonb;
