-- The Telegram bot's tables (versions 0150-0199 belong to services/intake/telegram).

-- One row per chat: the conversation's state, so a restart of intake (or another
-- replica) resumes exactly where the citizen was. The draft is plain JSON; its
-- photos are kept apart (bytes) in telegram_draft_photos.
CREATE TABLE telegram_chats (
    chat_id     bigint PRIMARY KEY,
    locale      text NOT NULL DEFAULT 'id',
    state       text NOT NULL DEFAULT 'idle',
    draft       jsonb NOT NULL DEFAULT '{}',
    -- The complaint whose agency question the next free text answers (set by the
    -- sender when it delivers a ticket.info_requested notification).
    answer_for  uuid,
    -- The citizen blocked the bot (403 from Telegram): nothing more is sent until
    -- they write to the bot again.
    blocked_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE telegram_draft_photos (
    chat_id      bigint NOT NULL,
    draft_id     text NOT NULL,
    seq          smallint NOT NULL,
    content_type text NOT NULL,
    data         bytea NOT NULL,
    PRIMARY KEY (chat_id, draft_id, seq)
);

-- Telegram retries webhook calls: an update id seen before changes nothing.
CREATE TABLE telegram_updates (
    update_id    bigint PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_updates_processed_at ON telegram_updates (processed_at);

-- Which chat made which complaint. The row is written before the submission with the
-- Idempotency-Key the bot submits under, so a notification can find the chat even
-- in the instant between the complaint's commit and complaint_id being filled in
-- (through intake.idempotency_keys, written in the complaint's own transaction).
-- The chat id is never shown to anyone and never leaves intake.
CREATE TABLE telegram_reports (
    idempotency_key text PRIMARY KEY,
    chat_id         bigint NOT NULL,
    complaint_id    uuid UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telegram_reports_chat ON telegram_reports (chat_id, created_at DESC);
CREATE INDEX idempotency_keys_complaint ON idempotency_keys ((body ->> 'complaint_id'));

-- The durable notification queue. The consumer only INSERTs here (inside the
-- transaction that applied the event); the sender claims due rows with
-- FOR UPDATE SKIP LOCKED, sends, and marks them sent or reschedules them.
CREATE TABLE telegram_notifications (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL,
    chat_id         bigint NOT NULL,
    complaint_id    uuid NOT NULL,
    kind            text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text,
    UNIQUE (event_id, chat_id)
);
CREATE INDEX telegram_notifications_due ON telegram_notifications (next_attempt_at, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
