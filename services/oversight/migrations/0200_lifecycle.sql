-- One lifecycle (awasi/lifecycle.py): the case's status is spelled as everywhere
-- else. seq: the highest sequence number of the complaint known here (oversight
-- stamps its own events with the next one); status_seq: that of the fact behind the
-- current status; paused_from: the status a request for information interrupted.
ALTER TABLE cases
    ADD COLUMN seq integer NOT NULL DEFAULT 0,
    ADD COLUMN status_seq integer NOT NULL DEFAULT 0,
    ADD COLUMN paused_from text;

UPDATE cases SET paused_from = CASE WHEN acknowledged_at IS NULL
                                    THEN 'assigned' ELSE 'acknowledged' END
    WHERE status = 'paused';
-- "disputed" was a resolution under dispute nobody had reopened yet: resolved, with
-- its open dispute (resolution_disputed), never counted as resolved.
UPDATE cases SET status = CASE status
        WHEN 'routed' THEN 'assigned'
        WHEN 'paused' THEN 'waiting_info'
        WHEN 'disputed' THEN 'resolved'
        ELSE status END
    WHERE status IN ('routed', 'paused', 'disputed');

ALTER TABLE cases ADD CONSTRAINT cases_status CHECK (status IN (
    'submitted', 'triage', 'assigned', 'acknowledged', 'waiting_info', 'resolved',
    'reopened', 'closed', 'archived', 'rejected', 'withdrawn'));

-- The dispute window is a deadline like the others: when it passes with no dispute,
-- the scheduler closes the case (step 'close' of the clock 'dispute'). So is the
-- citizen's answer to the agency's question (clock 'info'): a last 'reminder', then
-- 'archive'.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('triage', 'acknowledge', 'resolve', 'dispute', 'info'));
ALTER TABLE deadlines DROP CONSTRAINT deadlines_step_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_step_check
    CHECK (step IN ('warning', 'breach', 'escalation2', 'close', 'reminder', 'archive'));

-- Every triage rejection goes into the panel's review queue.
ALTER TABLE review_items DROP CONSTRAINT review_items_reason_check;
ALTER TABLE review_items ADD CONSTRAINT review_items_reason_check
    CHECK (reason IN ('breach', 'dispute', 'low_rating', 'audit_sample', 'rejection'));

-- A level-2 escalation puts the case into the panel's queue too.
ALTER TABLE review_items DROP CONSTRAINT review_items_reason_check;
ALTER TABLE review_items ADD CONSTRAINT review_items_reason_check
    CHECK (reason IN ('breach', 'dispute', 'low_rating', 'audit_sample', 'rejection',
                      'escalation2'));
