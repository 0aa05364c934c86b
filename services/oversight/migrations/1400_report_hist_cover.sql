-- The period reports' histogram read (services/oversight/reports.py, ``figures``):
-- one region's months for one agency (or '*'), every bucket. The consumers and the
-- compactor write these rows one by one, so the rows of one key lie on as many heap
-- pages as there are rows: at 1M complaints a year's report read 10,000 rows from
-- 5,000 pages (55-80 ms, EXPLAIN ANALYZE in docs/BENCHMARKS.md). With the bucket and
-- the count in the index an index-only scan reads a few index pages instead (pages
-- of months still being written are checked in the heap, as they must be).
CREATE INDEX stats_hist_monthly_cover ON stats_hist_monthly (region, agency, month)
    INCLUDE (measure, bucket, n);
DROP INDEX stats_hist_monthly_read;
