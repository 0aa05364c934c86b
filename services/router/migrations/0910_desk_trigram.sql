-- The desk's search also finds words from their middle and in compound spellings
-- ("lubang" in "berlubang") where the server has pg_trgm: Debian's and the Docker
-- image's PostgreSQL ship it in contrib; the embedded pgserver build has no contrib
-- modules, so there the search is the prefix full-text query alone (0900_desk.sql,
-- docs/ROUTER.md). The router decides which at start (pg_extension).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
EXCEPTION WHEN undefined_file OR feature_not_supported OR insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm is not available: the desk search uses prefix full text only';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        -- The same text as the search column, lower-cased, for LIKE '%word%'.
        EXECUTE 'CREATE INDEX tickets_text_trgm ON tickets USING gin ('
                '(lower(tracking_code || '' '' || coalesce(title, '''') || '' '' || description))'
                ' public.gin_trgm_ops)';
    END IF;
END
$$;
