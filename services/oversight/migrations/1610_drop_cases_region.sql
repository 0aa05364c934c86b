-- cases (region) is a prefix of cases_region_submitted (region, submitted_at), which
-- serves every lookup by region as well. The single-column index cost a write on
-- every new case and every change of its region, and its entries, ordered by the
-- row's place in the table among millions of equal keys, landed on pages read from
-- disk: 400-480 of them a burst of 2,000 complaints at 10M (docs/BENCHMARKS.md).
DROP INDEX cases_region;
