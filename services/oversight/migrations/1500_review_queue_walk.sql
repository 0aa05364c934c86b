-- The panel's queue page walks the open review items oldest first and keeps a case's
-- oldest open item only (services/oversight/panel.py, review_queue): the walk in
-- (created_at, complaint_id) order, the page's keyset, and a probe per item for an
-- older open item of the same case. Grouping every open item by case cost about 54 ms
-- of database CPU a page at 680,000 open items (docs/BENCHMARKS.md).
CREATE INDEX review_items_open_walk ON review_items (created_at, complaint_id)
    WHERE closed_at IS NULL;
CREATE INDEX review_items_open_case ON review_items (complaint_id, created_at, id)
    WHERE closed_at IS NULL;
-- The walk's index covers what the old one served (oldest open items first).
DROP INDEX review_items_open;
