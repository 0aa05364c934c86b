-- The panel's recommendations to this router's agencies, as oversight's
-- recommendation.issued events told it (services/router/recommendations.py). The
-- agency head answers here; each answer goes back to oversight as an event.
CREATE TABLE recommendations (
    id          uuid PRIMARY KEY,
    region      text NOT NULL,
    agency      text NOT NULL,
    what        text NOT NULL,
    why         text NOT NULL,
    due_date    date NOT NULL,
    source_kind text NOT NULL,
    source_ref  text,
    status      text NOT NULL DEFAULT 'open',
    issued_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX recommendations_agency ON recommendations (agency, issued_at DESC);

CREATE TABLE recommendation_answers (
    id                bigserial PRIMARY KEY,
    recommendation_id uuid NOT NULL REFERENCES recommendations (id),
    status            text NOT NULL
                      CHECK (status IN ('planned', 'in_progress', 'done', 'declined')),
    note              text NOT NULL,
    answered_by       text NOT NULL,
    answered_at       timestamptz NOT NULL
);
CREATE INDEX recommendation_answers_rec ON recommendation_answers (recommendation_id, id);
