-- The consumer asks, for every event that carries a deadline, whether the same
-- breach is already scheduled or fired (domain.schedule: complaint, clock, step,
-- instant, status pending or fired). The only index on complaint_id was partial on
-- pending rows, so that lookup read every deadline ever written (issue 18: 10.7 ms
-- at 117,000 rows, growing with history). This one matches it whatever the status;
-- tests/test_query_plans.py fails if a consumer's statement scans a growing table.
CREATE INDEX deadlines_case_step ON deadlines (complaint_id, kind, step, due_at);
