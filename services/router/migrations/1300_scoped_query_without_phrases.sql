-- The scoped words (1200) keep no positions, and a phrase operator never matches a
-- tsvector without positions. The parser makes phrases of words it splits: alone,
-- "08e523b6" (a part of a tracking code) reads as the number 08e523 followed by b6,
-- so a search for it through the scoped index found nothing while the plain words
-- found it. The scoped query now joins a phrase's parts with AND instead: the parts
-- anywhere in the ticket rather than side by side (docs/ROUTER.md). Lexemes hold only
-- letters and digits (awasi/textsearch.py), so "<" appears only in operators.
CREATE OR REPLACE FUNCTION scoped_query(scope text, q tsquery) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT regexp_replace(
        regexp_replace(q::text, '<(->|[0-9]+>)', '&', 'g'),
        '''((?:[^'']|'''')*)''',
        '''' || replace(scope, '''', '''''') || ':\1''', 'g')::tsquery
$$;
