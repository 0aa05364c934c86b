-- Satisfaction survey rollups (services/oversight/satisfaction.py), kept by the
-- consumer of survey.response_submitted in the same transaction as its dedupe row.
-- One row per service unit and local day (the day in the unit's region's time zone),
-- with the number of counted responses, the duplicates seen, and the sum of each
-- element's answers: any period's element means are sums / responses, exact, and a
-- period reads at most a few hundred rows per unit whatever the number of answers.
CREATE TABLE survey_daily (
    unit text NOT NULL,
    day date NOT NULL,
    region text NOT NULL,
    agency text NOT NULL,
    responses integer NOT NULL DEFAULT 0,
    duplicates integer NOT NULL DEFAULT 0,
    u1 bigint NOT NULL DEFAULT 0,
    u2 bigint NOT NULL DEFAULT 0,
    u3 bigint NOT NULL DEFAULT 0,
    u4 bigint NOT NULL DEFAULT 0,
    u5 bigint NOT NULL DEFAULT 0,
    u6 bigint NOT NULL DEFAULT 0,
    u7 bigint NOT NULL DEFAULT 0,
    u8 bigint NOT NULL DEFAULT 0,
    u9 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, day)
);
-- A region's period: one range scan.
CREATE INDEX survey_daily_region_day ON survey_daily (region, day);
