-- Supports ("saya juga mengalami") in the period statistics (services/oversight/
-- supports.py): how many people a problem touches, per agency and category.
-- Kept by the consumer in the same transaction as the complaint.supported event, in
-- tables of their own (the statistics' rollups may change around them).

-- The largest total seen per complaint: the next event's increment is measured from
-- it (the event carries the new total only, no supporter, no device).
CREATE TABLE case_supports (
    complaint_id  text PRIMARY KEY,
    support_count integer NOT NULL
);

-- Supports counted per local day (the region's time zone) of the support, with the
-- agency that had the case then ('' while in triage) and its category. A period's
-- figures are one range scan of the region's days.
CREATE TABLE supports_daily (
    region   text NOT NULL,
    day      date NOT NULL,
    agency   text NOT NULL,
    category text NOT NULL,
    supports bigint NOT NULL,
    PRIMARY KEY (region, day, agency, category)
);
