-- Supports of public reports ("saya juga mengalami"), from intake's
-- complaint.supported events: the latest total, a priority signal on the ticket and a
-- sort of the queue. The consumer keeps the largest total seen, so a redelivered or
-- late event never lowers it.
ALTER TABLE tickets ADD COLUMN support_count integer NOT NULL DEFAULT 0;

-- An agency's queue by support: most supported first, then newest.
CREATE INDEX tickets_agency_support ON tickets (agency, support_count DESC, created_at DESC);
