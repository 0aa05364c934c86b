-- The desk's search reads a ticket's text in the same words as the search box does
-- (awasi/textsearch.py, sql_document). PostgreSQL's parser reads a word by its
-- neighbours: in "AWS-06005195" it kept "-06005195" (a signed number) and in
-- "AWS-08E523B6" "08e523b6" (one word), but a search for the code's part alone was
-- "06005195", or "08e523" followed by "b6", and found nothing (seen in CI, for
-- about one tracking code in twenty). The search box splits words at anything but
-- a letter or digit; the text is now split the same way before the parser sees it,
-- so each word is read alone on both sides and a word that matches when typed
-- matches in the text. PostgreSQL 16 cannot change a generated column's
-- expression: the column and its two indexes are made again (a rewrite of the
-- table, once).
DROP INDEX tickets_search_scoped;
DROP INDEX tickets_search;
ALTER TABLE tickets DROP COLUMN search;
ALTER TABLE tickets ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, regexp_replace(
        coalesce(tracking_code, '') || ' ' || coalesce(title, '') || ' ' || description,
        '[^[:alnum:]]+', ' ', 'g'))
) STORED;
CREATE INDEX tickets_search ON tickets USING gin (search);
CREATE INDEX tickets_search_scoped ON tickets USING gin (scoped_words(agency, search));
