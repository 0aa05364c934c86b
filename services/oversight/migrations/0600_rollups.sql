-- Rollups (services/oversight/rollups.py): the statistics, the dashboard and the
-- period reports read these instead of aggregating every case. The consumer keeps
-- them in the same transaction as the event (the case's contribution before the
-- event is subtracted, the one after it added), the scheduler adds breaches and
-- level-2 escalations when it fires them. Every counter is exact; the medians come
-- from histograms of durations bucketed at 0.1 h below 24 h, 1 h below 240 h and
-- 10 h above (the bucket width is the median's error, stated in docs/OVERSIGHT.md).
--
-- Writers only INSERT delta rows (compact = false): no row is ever updated by two
-- transactions, so consumers applying chunks of events in parallel and the
-- scheduler firing batches never wait on each other's rollup rows nor deadlock.
-- The scheduler folds the deltas into one compacted row per key (compact = true,
-- unique per key) every statistics refresh; readers sum both.

-- The channel a complaint came by (complaint.submitted), for the reports' channel
-- table (was read from the timeline per request).
ALTER TABLE cases ADD COLUMN channel text;
-- The resolution deadline in force has fired as a breach: with a resolution, what
-- makes the case "due" for the on-time share (was "resolve_by <= now()" per request).
ALTER TABLE cases ADD COLUMN resolve_breached boolean NOT NULL DEFAULT false;

-- Fired breaches of one case (the consumer looks one up when a case's resolution
-- deadline changes; the other deadline indexes cover pending rows only).
CREATE INDEX deadlines_case_breached ON deadlines (complaint_id)
    WHERE status = 'fired' AND step = 'breach';

UPDATE cases c SET channel = coalesce(t.payload->>'channel', 'api')
    FROM timeline t
    WHERE t.complaint_id = c.complaint_id AND t.event_type = 'complaint.submitted';
UPDATE cases c SET resolve_breached = true
    WHERE resolve_by IS NOT NULL AND EXISTS (
        SELECT 1 FROM deadlines d WHERE d.complaint_id = c.complaint_id
          AND d.kind = 'resolve' AND d.step = 'breach' AND d.status = 'fired'
          AND d.due_at = c.resolve_by);

-- All time, per region and agency ('' where the case has none yet).
CREATE TABLE stats_totals (
    region          text NOT NULL,
    agency          text NOT NULL,
    received        bigint NOT NULL DEFAULT 0,
    resolved        bigint NOT NULL DEFAULT 0,
    on_time         bigint NOT NULL DEFAULT 0,
    due_n           bigint NOT NULL DEFAULT 0,
    ack_n           bigint NOT NULL DEFAULT 0,
    res_n           bigint NOT NULL DEFAULT 0,
    disputes        bigint NOT NULL DEFAULT 0,
    disputed_cases  bigint NOT NULL DEFAULT 0,
    rating_n        bigint NOT NULL DEFAULT 0,
    rating_sum      bigint NOT NULL DEFAULT 0,
    rating_1        bigint NOT NULL DEFAULT 0,
    rating_2        bigint NOT NULL DEFAULT 0,
    rating_3        bigint NOT NULL DEFAULT 0,
    rating_4        bigint NOT NULL DEFAULT 0,
    rating_5        bigint NOT NULL DEFAULT 0,
    breaches        bigint NOT NULL DEFAULT 0,
    escalations2    bigint NOT NULL DEFAULT 0,
    compact         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX stats_totals_key ON stats_totals (region, agency) WHERE compact;
CREATE INDEX stats_totals_delta ON stats_totals (region) WHERE NOT compact;

-- Per local submission month of the case (the region's time zone): a period report's
-- cohort is the complaints submitted in the period, and every period (quarter, half,
-- year) is whole months, so it sums at most 12 months. (A day grain would hold 30
-- times the rows and no reader needs it.)
CREATE TABLE stats_monthly (
    region          text NOT NULL,
    month           date NOT NULL,
    agency          text NOT NULL,
    category        text NOT NULL,
    channel         text NOT NULL,
    received        bigint NOT NULL DEFAULT 0,
    resolved        bigint NOT NULL DEFAULT 0,
    on_time         bigint NOT NULL DEFAULT 0,
    due_n           bigint NOT NULL DEFAULT 0,
    ack_n           bigint NOT NULL DEFAULT 0,
    res_n           bigint NOT NULL DEFAULT 0,
    disputes        bigint NOT NULL DEFAULT 0,
    disputed_cases  bigint NOT NULL DEFAULT 0,
    rating_n        bigint NOT NULL DEFAULT 0,
    rating_sum      bigint NOT NULL DEFAULT 0,
    rating_1        bigint NOT NULL DEFAULT 0,
    rating_2        bigint NOT NULL DEFAULT 0,
    rating_3        bigint NOT NULL DEFAULT 0,
    rating_4        bigint NOT NULL DEFAULT 0,
    rating_5        bigint NOT NULL DEFAULT 0,
    breaches        bigint NOT NULL DEFAULT 0,
    escalations2    bigint NOT NULL DEFAULT 0,
    compact         boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX stats_monthly_key
    ON stats_monthly (region, month, agency, category, channel) WHERE compact;
CREATE INDEX stats_monthly_delta ON stats_monthly (region, month) WHERE NOT compact;
-- The reports' reads (compacted and delta rows alike: the partial indexes serve
-- neither alone).
CREATE INDEX stats_monthly_read ON stats_monthly (region, month);

-- Histograms of durations (measure 'ack': routed -> acknowledged; 'res': routed ->
-- resolved, over cases counted as resolved). bucket: the lower edge in tenths of an
-- hour (see rollups.bucket). All time, and per local submission month.
CREATE TABLE stats_hist_totals (
    region   text NOT NULL,
    agency   text NOT NULL,
    measure  text NOT NULL CHECK (measure IN ('ack', 'res')),
    bucket   integer NOT NULL,
    n        bigint NOT NULL DEFAULT 0,
    compact  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX stats_hist_totals_key ON stats_hist_totals (region, agency, measure, bucket)
    WHERE compact;
CREATE INDEX stats_hist_totals_delta ON stats_hist_totals (region) WHERE NOT compact;
CREATE TABLE stats_hist_monthly (
    region   text NOT NULL,
    month    date NOT NULL,
    agency   text NOT NULL,
    measure  text NOT NULL CHECK (measure IN ('ack', 'res')),
    bucket   integer NOT NULL,
    n        bigint NOT NULL DEFAULT 0,
    compact  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX stats_hist_monthly_key
    ON stats_hist_monthly (region, month, agency, measure, bucket) WHERE compact;
CREATE INDEX stats_hist_monthly_delta ON stats_hist_monthly (region, month) WHERE NOT compact;
CREATE INDEX stats_hist_monthly_read ON stats_hist_monthly (region, agency, month);

-- The rollups of the cases already on record are computed at the next start (the
-- regions' time zones are in the catalog, not in the database): this row asks for it.
INSERT INTO jobs (name, next_at) VALUES ('stats_rollups_rebuild', '-infinity');
