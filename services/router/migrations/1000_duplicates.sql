-- Possible duplicates on a ticket, and the link of a duplicate to its original
-- (services/router/duplicates.py).

-- The open ticket this one was linked to as a duplicate (it then ended, rejected,
-- and its citizen follows the original). Set once; the original is never a
-- duplicate itself at the time of linking, so links never form a cycle.
ALTER TABLE tickets ADD COLUMN duplicate_of uuid REFERENCES tickets (id);
-- "Linked here": the duplicates of an original, shown on its page.
CREATE INDEX tickets_duplicate_of ON tickets (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- The candidates of a lookup: the newest open tickets of a region and category,
-- read through this index, so the cost of scoring them does not grow with the
-- history. The status list is the lifecycle's OPEN (awasi/lifecycle.py), written
-- out because a partial index's predicate must be a constant.
CREATE INDEX tickets_open_region_category ON tickets (region, category, submitted_at DESC)
    WHERE status IN ('submitted', 'triage', 'assigned', 'acknowledged', 'waiting_info',
                     'reopened');

-- The same for agency staff, who see their own agency's tickets only.
CREATE INDEX tickets_open_agency_category ON tickets (agency, category, submitted_at DESC)
    WHERE status IN ('submitted', 'triage', 'assigned', 'acknowledged', 'waiting_info',
                     'reopened');

-- Trigram similarity where the server has pg_trgm (as for intake's similar reports:
-- the router may run on its own database); else full-text ranking.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN undefined_file OR feature_not_supported OR insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm is not available: possible duplicates use full-text ranking';
END
$$;
