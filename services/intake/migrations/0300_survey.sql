-- Satisfaction survey responses (SKM, PermenPAN-RB 14/2017), one row per answer sheet.
-- Intake keeps the optional respondent data and comment; the event it publishes
-- carries only the answers (services/intake/survey.py).
--
-- respondent_key: HMAC of the signed device cookie's id (or of the Telegram user id)
-- under the server key: it tells two answers from one device apart without storing
-- the id itself. One counted answer per (unit, period, respondent_key): the partial
-- unique index decides, so two answers racing from one phone cannot both count; the
-- loser is stored as a duplicate (shown to the panel, never in the index).
CREATE TABLE survey_responses (
    id uuid PRIMARY KEY,
    unit text NOT NULL,
    region text NOT NULL,
    agency text NOT NULL,
    period text NOT NULL,
    respondent_key bytea NOT NULL,
    answers smallint[] NOT NULL
        CHECK (cardinality(answers) = 9 AND 1 <= ALL (answers) AND 4 >= ALL (answers)),
    age_group text,
    sex text,
    education text,
    occupation text,
    comment text,
    channel text NOT NULL CHECK (channel IN ('web', 'api', 'telegram')),
    duplicate boolean NOT NULL,
    submitted_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX survey_responses_once
    ON survey_responses (unit, period, respondent_key) WHERE NOT duplicate;
