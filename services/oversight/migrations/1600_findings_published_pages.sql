-- A period report lists the first published findings of the period and links to the
-- whole list, paged by (recorded_at, id) (services/oversight/reports.py,
-- published_findings). A page is one range of this index however deep it is; the
-- per-agency counts read findings_region_recorded.
CREATE INDEX findings_published_region ON findings (region, recorded_at, id) WHERE published;
