-- Audit anchoring: signed checkpoints of the chain head, the public keys that signed
-- them, incremental verification's last verified point, and the precomputed public
-- statistics. See docs/OVERSIGHT.md, "Audit anchoring".

-- Every key that ever signed a checkpoint stays here (rotation: a new key id is added,
-- old checkpoints keep verifying with the key they name).
CREATE TABLE signing_keys (
    key_id      text PRIMARY KEY,
    algorithm   text NOT NULL CHECK (algorithm = 'Ed25519'),
    public_key  text NOT NULL,          -- base64 of the 32-byte raw public key
    first_used  timestamptz NOT NULL
);

-- Signed heads of the chain. ``signature`` is over the canonical message built by
-- services.oversight.anchor.message(); a forger who rewrites the chain cannot make a
-- matching row without the private key, and anyone who saved one can check it.
CREATE TABLE checkpoints (
    id          bigserial PRIMARY KEY,
    seq         bigint NOT NULL,
    head_hash   text NOT NULL,
    created_at  timestamptz NOT NULL,
    key_id      text NOT NULL REFERENCES signing_keys (key_id),
    algorithm   text NOT NULL,
    signature   text NOT NULL,          -- base64
    requested_by text                   -- a panel member or 'cli'; NULL: the schedule
);

-- Database-scheduled jobs (like deadlines: no in-process timers). One row per job;
-- a sweep claims a due row with FOR UPDATE SKIP LOCKED, so with several oversight
-- processes each run happens once.
CREATE TABLE jobs (
    name     text PRIMARY KEY,
    next_at  timestamptz NOT NULL
);
INSERT INTO jobs (name, next_at) VALUES ('audit_checkpoint', '-infinity'),
                                        ('stats_snapshot', '-infinity');

-- Incremental verification: the last entry the public verify call found sound, and
-- the last verdict (served again while the rate limit holds).
CREATE TABLE chain_verified (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq         bigint NOT NULL DEFAULT 0,
    hash        text NOT NULL DEFAULT repeat('0', 64),
    checked_at  timestamptz,
    verdict     jsonb
);
INSERT INTO chain_verified DEFAULT VALUES;

-- The public statistics, computed in the background (services.oversight.stats): the
-- dashboard and GET /api/v1/stats/agencies read this one row instead of aggregating
-- every case per request.
CREATE TABLE stats_snapshot (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    computed_at   timestamptz NOT NULL,
    body          jsonb NOT NULL
);

-- Who acted, for the panel's own events (claims, findings, reopenings): written in
-- the transaction that puts the event in the outbox, read by the consumer when it
-- appends that event to the chain. The person goes on the chain (inside the hashed
-- content) but not on the topic: agencies read the topic and need not learn which
-- panel member audited them.
CREATE TABLE panel_actions (
    event_id    uuid PRIMARY KEY,
    actor       text NOT NULL
);
-- NULL on entries written before this migration: their hash input is unchanged (an
-- entry's hash covers ``actor`` only when it has one), so the old chain verifies.
ALTER TABLE timeline ADD COLUMN actor text;
