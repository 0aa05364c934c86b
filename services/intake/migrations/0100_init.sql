-- The intake schema's own tables (versions below 100 are the backbone's).

-- One row per complaint. The citizen-visible status and deadlines are kept current
-- by the consumer from the router's and oversight's events.
CREATE TABLE complaints (
    id              uuid PRIMARY KEY,
    tracking_code   text NOT NULL UNIQUE,
    region          text NOT NULL,
    category        text NOT NULL,
    title           text,
    description     text NOT NULL,
    lat             double precision,
    lon             double precision,
    address         text,
    privacy         text NOT NULL CHECK (privacy IN ('named', 'confidential', 'anonymous')),
    channel         text NOT NULL,
    -- Pseudonym carried by events: random, never derived from the contact.
    reporter_ref    text NOT NULL UNIQUE,
    -- sha256 of the follow-up secret (a 130-bit random string, so a fast hash is
    -- enough: there is nothing to brute-force that is cheaper than the secret itself).
    secret_hash     bytea NOT NULL,
    status          text NOT NULL DEFAULT 'submitted',
    agency          text,
    triage_by       timestamptz,
    acknowledge_by  timestamptz,
    resolve_by      timestamptz,
    dispute_until   timestamptz,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    breached        text[] NOT NULL DEFAULT '{}',
    rating          smallint CHECK (rating BETWEEN 1 AND 5),
    feedback_comment text,
    disputed        boolean NOT NULL DEFAULT false,
    feedback_at     timestamptz,
    submitted_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX complaints_submitted_at ON complaints (submitted_at DESC);
CREATE INDEX complaints_category ON complaints (category, submitted_at DESC);

-- The reporter's contact: intake is the only service that keeps it. Anonymous
-- reports have no row here.
CREATE TABLE reporters (
    complaint_id uuid PRIMARY KEY REFERENCES complaints (id) ON DELETE CASCADE,
    name         text,
    phone        text,
    email        text
);

-- Photos, served to staff only through expiring signed links.
CREATE TABLE photos (
    id           uuid PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    content_type text NOT NULL,
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX photos_complaint ON photos (complaint_id);

-- What the citizen may see of the case's history (no staff names, no internal notes).
CREATE TABLE timeline (
    id           bigserial PRIMARY KEY,
    complaint_id uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX timeline_complaint ON timeline (complaint_id, at, id);

-- Idempotency-Key: the first answer to a submission, returned again on a retry.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY,
    request_hash bytea NOT NULL,
    status       smallint NOT NULL,
    body         jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
