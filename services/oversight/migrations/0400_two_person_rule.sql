-- The panel checks itself (docs/OVERSIGHT.md, "Two-person rule").
--
-- A finding is first a draft (a proposal of kind 'record'); it becomes a row of
-- findings only when a second panel member confirms it, with the draft's id as the
-- finding's id. Amending or withdrawing a finding is also a proposal that another
-- member confirms. So `findings` only ever holds confirmed, current findings, and
-- every reader of it (statistics, reports, the dashboard, recommendations) counts
-- nothing that one person alone decided.

CREATE TABLE finding_proposals (
    id                     bigserial PRIMARY KEY,
    complaint_id           text NOT NULL REFERENCES cases (complaint_id),
    kind                   text NOT NULL CHECK (kind IN ('record', 'amend', 'withdraw')),
    -- The finding an amendment or withdrawal changes; for 'record', the finding's
    -- id once confirmed (equal to this proposal's id).
    finding_id             bigint,
    outcome                text,
    maladministration_type text,
    recommendation         text,
    published              boolean,
    reason                 text,
    proposed_by            text NOT NULL,
    proposed_at            timestamptz NOT NULL,
    status                 text NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'confirmed', 'cancelled')),
    decided_by             text,
    decided_at             timestamptz,
    CHECK (kind = 'record' OR finding_id IS NOT NULL),
    CHECK (kind = 'withdraw' OR (outcome IS NOT NULL AND recommendation IS NOT NULL
                                 AND published IS NOT NULL))
);
-- One open proposal per case for a new finding and one per finding for a change:
-- two members cannot race two versions past each other.
CREATE UNIQUE INDEX finding_proposals_one_record ON finding_proposals (complaint_id)
    WHERE status = 'pending' AND kind = 'record';
CREATE UNIQUE INDEX finding_proposals_one_change ON finding_proposals (finding_id)
    WHERE status = 'pending' AND kind <> 'record';
CREATE INDEX finding_proposals_pending ON finding_proposals (proposed_at)
    WHERE status = 'pending';
-- A confirmed draft's id becomes the finding's id: start above every finding
-- recorded before this migration.
SELECT setval(pg_get_serial_sequence('finding_proposals', 'id'),
              (SELECT coalesce(max(id), 0) + 1 FROM findings), false);

ALTER TABLE findings ADD COLUMN confirmed_by text;

-- Every version a finding had before an amendment or a withdrawal replaced it.
CREATE TABLE finding_versions (
    id                     bigserial PRIMARY KEY,
    finding_id             bigint NOT NULL,
    complaint_id           text NOT NULL,
    agency                 text,
    region                 text,
    outcome                text NOT NULL,
    maladministration_type text,
    recommendation         text NOT NULL,
    published              boolean NOT NULL,
    recorded_by            text NOT NULL,
    recorded_at            timestamptz NOT NULL,
    confirmed_by           text,
    replaced_at            timestamptz NOT NULL,
    -- The proposal that replaced (amend) or removed (withdraw) this version.
    replaced_by_proposal   bigint NOT NULL REFERENCES finding_proposals (id)
);
CREATE INDEX finding_versions_finding ON finding_versions (finding_id, id);

-- Declared conflicts of interest: a member who works for or with an agency does not
-- claim, draft, amend or confirm findings on its cases.
CREATE TABLE panel_conflicts (
    username     text NOT NULL,
    agency       text NOT NULL,
    reason       text NOT NULL,
    declared_at  timestamptz NOT NULL,
    PRIMARY KEY (username, agency)
);
CREATE INDEX panel_conflicts_agency ON panel_conflicts (agency);
