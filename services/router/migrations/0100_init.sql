-- The router's tickets and their timelines (versions below 100 are the backbone's).

CREATE TABLE tickets (
    id                  uuid PRIMARY KEY,
    -- One ticket per complaint, whatever the number of deliveries of its
    -- complaint.submitted event (the consumer's dedupe table is the first guard,
    -- this constraint the last).
    complaint_id        text NOT NULL UNIQUE,
    tracking_code       text NOT NULL,
    region              text NOT NULL,
    category            text NOT NULL,
    title               text,
    description         text NOT NULL,
    location            jsonb,
    privacy             text NOT NULL CHECK (privacy IN ('named', 'confidential', 'anonymous')),
    reporter_ref        text NOT NULL,
    channel             text NOT NULL,
    photo_ids           text[] NOT NULL DEFAULT '{}',
    submitted_at        timestamptz NOT NULL,
    status              text NOT NULL CHECK (status IN (
                            'triage', 'new', 'acknowledged', 'waiting_info', 'resolved',
                            'reopened', 'withdrawn')),
    agency              text,          -- NULL while in the region's triage queue
    rule                text NOT NULL, -- the rule (or officer) that made the last routing decision
    assigned_at         timestamptz,   -- when the current agency received it
    triage_by           timestamptz,
    acknowledge_by      timestamptz,
    resolve_by          timestamptz,
    dispute_until       timestamptz,
    -- The next deadline that runs (NULL while paused or when none runs): the
    -- queue's sort key and the basis of the overdue / due-soon filters.
    next_due            timestamptz,
    acknowledged_at     timestamptz,
    resolved_at         timestamptz,
    paused_at           timestamptz,
    status_before_pause text,
    escalation_level    int NOT NULL DEFAULT 0,
    breached            text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'triage' OR agency IS NOT NULL)
);
CREATE INDEX tickets_agency_created ON tickets (agency, created_at DESC);
CREATE INDEX tickets_agency_due ON tickets (agency, next_due);
CREATE INDEX tickets_triage ON tickets (region, triage_by) WHERE status = 'triage';
CREATE INDEX tickets_tracking_code ON tickets (tracking_code);

-- Everything that happened to a ticket, in order: events received and actions taken.
CREATE TABLE timeline (
    id           bigserial PRIMARY KEY,
    ticket_id    uuid NOT NULL REFERENCES tickets (id),
    kind         text NOT NULL,        -- the event type
    occurred_at  timestamptz NOT NULL,
    actor        text NOT NULL,        -- a username, or citizen / router / oversight
    agency       text,
    data         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_ticket ON timeline (ticket_id, id);
