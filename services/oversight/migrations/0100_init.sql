-- The oversight schema (versions below 100 are the backbone's outbox and
-- processed_events). Nothing here holds personal data of a reporter: events carry
-- none, and oversight stores only what the events say about the case.

-- One row per case: the current state, folded from the events.
CREATE TABLE cases (
    complaint_id        text PRIMARY KEY,
    tracking_code       text UNIQUE,
    region              text,
    category            text,
    agency              text,
    status              text NOT NULL DEFAULT 'submitted',
    submitted_at        timestamptz,
    routed_at           timestamptz,
    acknowledged_at     timestamptz,
    resolved_at         timestamptz,
    resolve_by          timestamptz,
    acknowledge_by      timestamptz,
    triage_by           timestamptz,
    dispute_until       timestamptz,
    paused_at           timestamptz,
    -- The latest resolution was disputed: it never counts as resolved.
    resolution_disputed boolean NOT NULL DEFAULT false,
    dispute_count       integer NOT NULL DEFAULT 0,
    rating              smallint,
    -- The deadline the latest resolution was measured against.
    resolved_on_time    boolean,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_agency ON cases (agency);
CREATE INDEX cases_region ON cases (region);

-- The tamper-evident timeline: one global hash chain over every case's events.
-- seq is gap-free (assigned under the chain_head row lock), and each entry's hash
-- commits to the previous entry's hash, so an edited, deleted or reordered row, or a
-- whole deleted case, breaks the chain from that point.
CREATE TABLE timeline (
    seq          bigint PRIMARY KEY,
    complaint_id text NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    event_type   text NOT NULL,
    producer     text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    payload      jsonb NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL
);
CREATE INDEX timeline_case ON timeline (complaint_id, seq);

-- The head of the chain: one row, locked by each append so appends are serial and
-- seq follows commit order. Keeping the last seq and hash here also makes deleting
-- the newest entries detectable.
CREATE TABLE chain_head (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint NOT NULL DEFAULT 0,
    last_hash text NOT NULL
);
INSERT INTO chain_head (last_seq, last_hash) VALUES (0, repeat('0', 64));

-- Deadlines live here, not in timers. One row per step of the escalation ladder
-- (warning, breach, level-2 escalation) of one clock (triage, acknowledge, resolve).
CREATE TABLE deadlines (
    id           bigserial PRIMARY KEY,
    complaint_id text NOT NULL REFERENCES cases (complaint_id),
    kind         text NOT NULL CHECK (kind IN ('triage', 'acknowledge', 'resolve')),
    step         text NOT NULL CHECK (step IN ('warning', 'breach', 'escalation2')),
    agency       text,
    due_at       timestamptz NOT NULL,
    fire_at      timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'fired', 'skipped', 'cancelled')),
    fired_at     timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- The sweep reads only pending rows in fire_at order: a partial index keeps its
-- cost independent of how many rows have fired or been cancelled.
CREATE INDEX deadlines_pending ON deadlines (fire_at) WHERE status = 'pending';
CREATE INDEX deadlines_case ON deadlines (complaint_id, kind) WHERE status = 'pending';
CREATE INDEX deadlines_fired ON deadlines (agency, step) WHERE status = 'fired';

-- The panel's review queue: why a case is there, since when, and who took it.
CREATE TABLE review_items (
    id           bigserial PRIMARY KEY,
    complaint_id text NOT NULL REFERENCES cases (complaint_id),
    reason       text NOT NULL
                 CHECK (reason IN ('breach', 'dispute', 'low_rating', 'audit_sample')),
    source       text NOT NULL,   -- what put it there (deadline id, event id)
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    closed_at    timestamptz,
    UNIQUE (complaint_id, reason, source)
);
CREATE INDEX review_items_open ON review_items (created_at) WHERE closed_at IS NULL;

-- Claims are per case: one panel member works a case at a time.
CREATE TABLE claims (
    complaint_id text PRIMARY KEY REFERENCES cases (complaint_id),
    claimed_by   text NOT NULL,
    claimed_at   timestamptz NOT NULL
);

CREATE TABLE findings (
    id                     bigserial PRIMARY KEY,
    complaint_id           text NOT NULL REFERENCES cases (complaint_id),
    event_id               uuid NOT NULL UNIQUE,
    agency                 text,
    region                 text,
    outcome                text NOT NULL,
    maladministration_type text,
    recommendation         text NOT NULL,
    published              boolean NOT NULL,
    recorded_by            text NOT NULL,
    recorded_at            timestamptz NOT NULL
);
CREATE INDEX findings_published ON findings (recorded_at) WHERE published;
