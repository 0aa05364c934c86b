-- Recommendations of the panel to an agency (services/oversight/recommendations.py),
-- public with their whole history. The agency answers on the desk (router); its
-- answers arrive as recommendation.answered events.
CREATE TABLE recommendations (
    id           uuid PRIMARY KEY,
    region       text NOT NULL,
    agency       text NOT NULL,
    what         text NOT NULL,
    why          text NOT NULL,
    due_date     date NOT NULL,
    -- Where it comes from: a finding (its id) or a period's report (its period code).
    source_kind  text NOT NULL CHECK (source_kind IN ('finding', 'report', 'panel')),
    source_ref   text,
    status       text NOT NULL DEFAULT 'open'
                 CHECK (status IN ('open', 'planned', 'in_progress', 'done', 'declined')),
    action_plan  text,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX recommendations_region ON recommendations (region, created_at);
CREATE INDEX recommendations_agency ON recommendations (agency, created_at);

-- Every step: issued by the panel, then each answer of the agency.
CREATE TABLE recommendation_updates (
    id                bigserial PRIMARY KEY,
    recommendation_id uuid NOT NULL REFERENCES recommendations (id),
    event_id          uuid NOT NULL UNIQUE,
    status            text NOT NULL,
    note              text,
    by_side           text NOT NULL CHECK (by_side IN ('panel', 'agency')),
    at                timestamptz NOT NULL
);
CREATE INDEX recommendation_updates_rec ON recommendation_updates (recommendation_id, id);
