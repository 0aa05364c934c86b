-- Participation: supports ("saya juga mengalami") and similar-report lookup.

-- The count shown on the public list and page, kept here so the list reads one row
-- per report (never a COUNT over supports per page).
ALTER TABLE complaints ADD COLUMN support_count integer NOT NULL DEFAULT 0;

-- One row per (report, supporter): the primary key is what makes a support count
-- once. ``supporter`` is an HMAC of the device id or the Telegram user id under the
-- server key (``services/intake/participation.py``), so this table holds no
-- identifier that leads back to a person or a chat.
CREATE TABLE supports (
    complaint_id uuid NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    supporter    bytea NOT NULL,
    channel      text NOT NULL CHECK (channel IN ('web', 'api', 'telegram')),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (complaint_id, supporter)
);

-- The public list sorted by support (``sort=support``): a keyset on
-- (support_count, submitted_at, tracking_code), one range scan per page like the
-- newest-first walk of 0160. Partial on public reports, as those are.
CREATE INDEX complaints_public_support
    ON complaints (support_count DESC, submitted_at DESC, tracking_code DESC)
    WHERE visibility = 'public';
CREATE INDEX complaints_public_region_support
    ON complaints (region, support_count DESC, submitted_at DESC, tracking_code DESC)
    WHERE visibility = 'public';

-- The public list near a point (``near=lat,lon``): the points of public reports in a
-- GiST index (core PostgreSQL, no extension), so a small box reads only the reports
-- in it.
CREATE INDEX complaints_public_point ON complaints USING gist (point(lon, lat))
    WHERE visibility = 'public';

-- Similar reports: a citizen about to file is shown open public reports of the same
-- region and category that read alike. The lookup compares the text of the newest
-- SIMILAR_CANDIDATES (participation.py) public reports of that region and category,
-- read through this index, so its cost is bounded whatever the history (a duplicate
-- is, in practice, a recent report). Text similarity is pg_trgm's where the server
-- has it (Debian's and the Docker image's PostgreSQL ship it in contrib); the
-- embedded pgserver build has no contrib modules, so there it is PostgreSQL's
-- built-in full-text ranking.
CREATE INDEX complaints_public_region_category
    ON complaints (region, category, submitted_at DESC)
    WHERE visibility = 'public';

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN undefined_file OR feature_not_supported OR insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm is not available: similar reports use full-text ranking';
END
$$;
