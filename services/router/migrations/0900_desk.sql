-- The agency desk at scale (docs/ROUTER.md, "The desk at scale"): who works a
-- ticket, full-text search, keyset paging, internal notes, and warnings that reach
-- the assignee.

-- The agency member working the ticket (a username of identity.users, of the
-- ticket's agency), or NULL for nobody. Cleared when the ticket leaves the agency.
ALTER TABLE tickets ADD COLUMN assignee text;
CREATE INDEX tickets_agency_assignee ON tickets (agency, assignee, created_at DESC, id DESC);

-- Keyset paging: each sort's order with the id as the last key, so a page starts
-- strictly after the previous page's last row with one index range scan.
CREATE INDEX tickets_agency_created_id ON tickets (agency, created_at DESC, id DESC);
CREATE INDEX tickets_agency_deadline_id
    ON tickets (agency, (coalesce(next_due, 'infinity'::timestamptz)), created_at, id);
CREATE INDEX tickets_agency_support_id ON tickets (agency, support_count DESC, created_at DESC, id DESC);
CREATE INDEX tickets_triage_created_id ON tickets (created_at DESC, id DESC) WHERE status = 'triage';

-- Full-text search over the agency's tickets. The 'simple' configuration: no
-- stemming (PostgreSQL has no Indonesian stemmer, and an English or other one would
-- mangle Indonesian words) and no stop words; partial words match by prefix
-- ('jal:*'). A stored generated column so the index and the query read one value.
ALTER TABLE tickets ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig,
                coalesce(tracking_code, '') || ' ' || coalesce(title, '') || ' ' || description)
) STORED;
CREATE INDEX tickets_search ON tickets USING gin (search);

-- Internal notes: the agency's own working notes on a ticket. Seen by the agency's
-- staff and heads and by panel members (through the router's API), never by the
-- citizen: they are not events, so they never reach a topic or intake.
CREATE TABLE notes (
    id          bigserial PRIMARY KEY,
    ticket_id   uuid NOT NULL REFERENCES tickets (id),
    agency      text NOT NULL,      -- the agency that wrote it (the ticket's at the time)
    author      text NOT NULL,      -- a username
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 5000),
    created_at  timestamptz NOT NULL
);
CREATE INDEX notes_ticket ON notes (ticket_id, id);

-- Deadline warnings reach the ticket's assignee first: a notification addressed to
-- one person (audience 'assignee', username set).
ALTER TABLE notifications ADD COLUMN username text;
ALTER TABLE notifications DROP CONSTRAINT notifications_audience_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_audience_check
    CHECK (audience IN ('head', 'inspectorate', 'assignee'));
ALTER TABLE notifications ADD CONSTRAINT notifications_assignee_check
    CHECK ((audience = 'assignee') = (username IS NOT NULL));
CREATE INDEX notifications_person ON notifications (username, created_at DESC)
    WHERE username IS NOT NULL;
