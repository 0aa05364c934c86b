-- Files the agency sends the citizen as an answer (services/router/attachments.py):
-- a PDF that passed awasi/pdfcheck.py, or an image re-encoded by awasi/media.py.
-- The bytes live here, in the router's own schema (bytea): they are capped at
-- AWASI_ATTACHMENT_MAX_BYTES (a few MB), few per ticket, and stored in the same
-- transaction as the ticket's timeline entry and outbox event, so an attachment
-- exists exactly when the citizen is told of it, and backups hold it with the case.
CREATE TABLE attachments (
    id            uuid PRIMARY KEY,
    ticket_id     uuid NOT NULL REFERENCES tickets (id),
    agency        text NOT NULL,
    author        text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('pdf', 'image')),
    content_type  text NOT NULL CHECK (content_type IN ('application/pdf', 'image/jpeg',
                                                        'image/png', 'image/webp')),
    file_name     text NOT NULL,
    size          integer NOT NULL CHECK (size > 0),
    data          bytea NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX attachments_ticket ON attachments (ticket_id, created_at);
