-- One lifecycle (awasi/lifecycle.py): the desk's "new" is the lifecycle's
-- "assigned". seq: the highest sequence number of the complaint known here;
-- status_seq: that of the fact behind the current status (an older event arriving
-- late on another topic never undoes it).
ALTER TABLE tickets
    ADD COLUMN seq integer NOT NULL DEFAULT 0,
    ADD COLUMN status_seq integer NOT NULL DEFAULT 0;

ALTER TABLE tickets DROP CONSTRAINT tickets_status_check;
UPDATE tickets SET status = 'assigned' WHERE status = 'new';
UPDATE tickets SET status_before_pause = 'assigned' WHERE status_before_pause = 'new';
ALTER TABLE tickets ADD CONSTRAINT tickets_status_check CHECK (status IN (
    'submitted', 'triage', 'assigned', 'acknowledged', 'waiting_info', 'resolved',
    'reopened', 'closed', 'archived', 'rejected', 'withdrawn'));

-- A ticket that never reached an agency may also end in triage: withdrawn by the
-- citizen, or rejected by the triage officer.
ALTER TABLE tickets DROP CONSTRAINT tickets_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_agency_check
    CHECK (status IN ('submitted', 'triage', 'rejected', 'withdrawn') OR agency IS NOT NULL);

-- How many times the ticket was transferred between agencies: after the second, a
-- further transfer sends it back to the region's triage officer instead.
ALTER TABLE tickets ADD COLUMN transfers integer NOT NULL DEFAULT 0;
UPDATE tickets t SET transfers = (SELECT count(*) FROM timeline l
                                  WHERE l.ticket_id = t.id AND l.kind = 'ticket.transferred');
-- The sending agency's read-only view: what it transferred away.
CREATE INDEX timeline_transferred_by ON timeline (agency, occurred_at DESC)
    WHERE kind IN ('ticket.transferred', 'ticket.returned_to_triage');

-- Escalation that reaches people. warned: the clocks oversight warned about (the
-- queue's badge and filter), cleared when the clock stops or restarts.
ALTER TABLE tickets ADD COLUMN warned text[] NOT NULL DEFAULT '{}';
CREATE INDEX tickets_agency_warned ON tickets (agency) WHERE cardinality(warned) > 0;

-- The desk's notifications: a breach (level 1) for the agency's head, level 2 for the
-- region's inspectorate (the catalog's agency with the role "inspectorate"). They name
-- the ticket's tracking code, agency and clock, never its content.
CREATE TABLE notifications (
    id            bigserial PRIMARY KEY,
    event_id      uuid NOT NULL,
    agency        text NOT NULL,          -- whose desk shows it
    audience      text NOT NULL CHECK (audience IN ('head', 'inspectorate')),
    ticket_id     uuid NOT NULL REFERENCES tickets (id),
    tracking_code text NOT NULL,
    ticket_agency text,                   -- the agency that missed the deadline
    level         int NOT NULL,
    deadline      text NOT NULL,
    created_at    timestamptz NOT NULL,
    read_at       timestamptz,
    UNIQUE (event_id, audience)
);
CREATE INDEX notifications_desk ON notifications (agency, audience, created_at DESC);
