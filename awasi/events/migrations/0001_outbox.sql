-- The backbone's tables, in every service schema (versions below 100 are the backbone's).

-- Events waiting to be published, written in the same transaction as the change
-- that caused them. `id` orders publication.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    topic       text NOT NULL,
    key         text NOT NULL,
    event_type  text NOT NULL,
    envelope    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wake the relay as soon as a row commits (NOTIFY is delivered at commit).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END $$;
-- Row level so that marking rows sent does not wake it; pg_notify folds the
-- identical notifications of one transaction into one.
CREATE TRIGGER outbox_notify AFTER INSERT OR UPDATE OF sent_at ON outbox
    FOR EACH ROW WHEN (NEW.sent_at IS NULL) EXECUTE FUNCTION outbox_notify();

-- Events this schema's consumers applied; written in the same transaction as the
-- effect, so a redelivered event is recognised and skipped.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_at ON processed_events (processed_at);
