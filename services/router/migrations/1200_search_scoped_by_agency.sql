-- The desk search for a word that is common in other agencies' tickets but absent
-- from the caller's (issue 17; docs/BENCHMARKS.md, "The agency desk"): about 1 s at
-- a million tickets. The planner estimated the word's matches from the whole table,
-- expected plenty in the agency too, walked the agency's queue in order (100,000
-- tickets) and found none. pgserver has no btree_gin, so no GIN index can hold
-- (agency, word) as two columns.
--
-- Instead, each ticket's words scoped by its agency, as lexemes "AGENCY:word", in
-- one GIN expression index. A search of the agency's tickets asks for
-- 'MDN-PUPR:pelabuhan':* : one prefix range of the index, and ANALYZE's statistics
-- of the expression give the planner that word's frequency IN THE AGENCY, so it
-- takes the index for a word the agency rarely or never has and keeps walking the
-- queue in order for a common one. (A function with its own search_path is never
-- inlined: queries and the index name the same call; and no caller's search_path
-- can change what it computes.)
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
