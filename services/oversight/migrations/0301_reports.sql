-- Periodic evaluation reports (services/oversight/reports.py).

-- Report figures are computed per period over the complaints received in it (by
-- region, optionally one agency): each statement starts from this range.
CREATE INDEX cases_region_submitted ON cases (region, submitted_at);
-- Breaches and second-level escalations of those complaints.
CREATE INDEX deadlines_case_fired ON deadlines (complaint_id) WHERE status = 'fired';
-- Findings recorded in a period, per region.
CREATE INDEX findings_region_recorded ON findings (region, recorded_at);

-- A published report, as it was: the exact bytes served afterwards, whatever events
-- arrive late. ``agency`` is '' for the region's report. The SHA-256 of each file is
-- also on the audit chain (a ``report.published`` entry with the panel member).
CREATE TABLE published_reports (
    region       text NOT NULL,
    period       text NOT NULL,
    agency       text NOT NULL DEFAULT '',
    locale       text NOT NULL CHECK (locale IN ('id', 'en')),
    html         bytea NOT NULL,
    pdf          bytea NOT NULL,
    html_sha256  text NOT NULL,
    pdf_sha256   text NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (region, period, agency, locale)
);
-- Nothing may change a published report: refuse UPDATE and DELETE at the database.
CREATE FUNCTION published_reports_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a published report never changes';
END $$;
CREATE TRIGGER published_reports_frozen BEFORE UPDATE OR DELETE ON published_reports
    FOR EACH ROW EXECUTE FUNCTION published_reports_frozen();
