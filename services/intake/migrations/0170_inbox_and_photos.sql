-- The Telegram webhook's durable inbox: each update is stored (one INSERT, its own
-- transaction) before the webhook answers 2xx, so a crash between Telegram's call
-- and the bot's answer loses nothing; a worker processes the rows (see
-- services/intake/telegram/inbox.py). update_id is the key: a redelivered update is
-- stored once. chat_id orders a chat's updates (NULL: an update without a chat).
CREATE TABLE telegram_inbox (
    update_id    bigint PRIMARY KEY,
    chat_id      bigint,
    -- The update's JSON as Telegram sent it (the citizen's words), as bytes: jsonb
    -- cannot hold a \u0000 a message may carry. Emptied once processed; the row
    -- stays a few days only to recognise a redelivery.
    payload      bytea,
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- A worker's claim on the chat's oldest update; an expired lease (a crashed
    -- process) lets another worker take it.
    leased_until timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    processed_at timestamptz,
    -- Why it was not handled, if it was not: 'flood' (too many waiting for the chat).
    outcome      text
);
CREATE INDEX telegram_inbox_pending ON telegram_inbox ((coalesce(chat_id, -update_id)), update_id)
    WHERE processed_at IS NULL;
CREATE INDEX telegram_inbox_processed ON telegram_inbox (processed_at)
    WHERE processed_at IS NOT NULL;

-- Photos stored before intake re-encoded them may still carry EXIF (GPS, device),
-- XMP or comments. Rows present now are marked not re-encoded; rows inserted from
-- now on are re-encoded by intake before the INSERT (services/intake/photos.py), so
-- the column's default turns true after the existing rows got false. The one-off
-- command `awasi photos scrub` re-encodes the old rows and marks them.
ALTER TABLE photos ADD COLUMN reencoded boolean NOT NULL DEFAULT false;
ALTER TABLE photos ALTER COLUMN reencoded SET DEFAULT true;
ALTER TABLE telegram_draft_photos ADD COLUMN reencoded boolean NOT NULL DEFAULT false;
ALTER TABLE telegram_draft_photos ALTER COLUMN reencoded SET DEFAULT true;
CREATE INDEX photos_not_reencoded ON photos (id) WHERE NOT reencoded;
