-- Visibility: whether the report itself may be published, a choice separate from the
-- reporter's identity mode. A public report's text, category, agency, status and
-- deadlines appear on the public list and in Open311; a private one never does.
-- Every report filed before the choice existed becomes private: nobody agreed to
-- publish it. (A constant default: PostgreSQL adds the column without a rewrite.)
ALTER TABLE complaints ADD COLUMN visibility text NOT NULL DEFAULT 'private'
    CHECK (visibility IN ('public', 'private'));

-- The public list (GET /reports, /api/v1/reports, Open311 GET requests) walks public
-- reports newest first with a keyset on (submitted_at, tracking_code): one index range scan per
-- page, whatever the history. Partial, so private reports cost these indexes nothing;
-- one per filter that narrows the walk (none, region, category); status is checked
-- on the rows the walk meets. The tie-breaker is the tracking code, public already,
-- so a page token carries nothing that is not on the page.
CREATE INDEX complaints_public ON complaints (submitted_at DESC, tracking_code DESC)
    WHERE visibility = 'public';
CREATE INDEX complaints_public_region
    ON complaints (region, submitted_at DESC, tracking_code DESC)
    WHERE visibility = 'public';
CREATE INDEX complaints_public_category
    ON complaints (category, submitted_at DESC, tracking_code DESC)
    WHERE visibility = 'public';
