-- The intake schema's own tables start at version 100 (below is the backbone's).
CREATE TABLE event_log (
    event_id     uuid PRIMARY KEY,
    complaint_id text NOT NULL,
    event_type   text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
