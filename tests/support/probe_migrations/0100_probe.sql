-- The probe: a minimal "service" used to prove the backbone end to end.
-- state: the producer side's state changes; effects: what the consumer side applied.
CREATE TABLE state (
    seq         int PRIMARY KEY,
    complaint_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE effects (
    seq         int PRIMARY KEY,
    times       int NOT NULL DEFAULT 1,
    applied_by  text NOT NULL,
    sent_at     timestamptz,
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
