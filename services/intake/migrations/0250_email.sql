-- E-mail to citizens (versions 0250-0299 belong to intake's e-mail channel).

-- The language the citizen used when they filed (the form's language, the API's
-- Accept-Language), so what we write to them later is in it. Bahasa Indonesia
-- unless they chose otherwise. Kept beside the contact it goes with.
ALTER TABLE reporters ADD COLUMN locale text NOT NULL DEFAULT 'id';

-- The durable e-mail queue, an outbox of its own: the consumer only INSERTs here
-- (in the transaction that applied the event), the sender claims due rows with
-- FOR UPDATE SKIP LOCKED, sends, and marks them sent or reschedules them. The
-- address is not copied here: the sender reads it from reporters when it sends, so
-- the queue holds no personal data and an erased contact is never written to.
-- One row per event: a replayed event queues nothing twice.
CREATE TABLE email_notifications (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    complaint_id    uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX email_notifications_due ON email_notifications (next_attempt_at, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
