-- The desk search for a word that is common in other agencies' tickets but absent
-- from the caller's (issue 17; docs/BENCHMARKS.md, "The agency desk"): about 1 s at
-- a million tickets. The planner estimated the word's matches from the whole table,
-- expected plenty in the agency too, walked the agency's queue in order (100,000
-- tickets) and found none. pgserver has no btree_gin, so no GIN index can hold
-- (agency, word) as two columns.
--
-- Instead, each ticket's words scoped by its agency, as lexemes "AGENCY:word", in
-- one GIN expression index. ANALYZE's statistics of the expression give each word's
-- frequency IN THE AGENCY: before a search the router asks the planner how many of
-- the agency's tickets hold each word (services/router/db.py, rare_in_agency), and
-- for a word the agency rarely or never has it asks this index for
-- 'MDN-PUPR:pelabuhan':* (one range of it); for a common word it keeps walking the
-- queue in order. (A function with its own search_path is never inlined: queries
-- and the index name the same call; and no caller's search_path can change what it
-- computes.)
CREATE FUNCTION scoped_words(scope text, words tsvector) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT array_to_tsvector(ARRAY(
        SELECT scope || ':' || w FROM unnest(tsvector_to_array(words)) AS w))
$$;

-- A query for that index: every lexeme of ``q`` (as to_tsquery('simple', ...) made
-- it, so a word is split and normalised exactly as the tickets' text was) scoped the
-- same way. In the text form of a tsquery each lexeme is quoted, an inner quote
-- doubled; operators and weights stay as they are.
CREATE FUNCTION scoped_query(scope text, q tsquery) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
    SELECT regexp_replace(q::text, '''((?:[^'']|'''')*)''',
                          '''' || replace(scope, '''', '''''') || ':\1''', 'g')::tsquery
$$;

CREATE INDEX tickets_search_scoped ON tickets USING gin (scoped_words(agency, search));
