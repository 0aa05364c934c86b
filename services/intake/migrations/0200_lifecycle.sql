-- One lifecycle (awasi/lifecycle.py): the statuses every service spells the same.
-- seq: the highest sequence number of this complaint known here (intake stamps 1 on
-- complaint.submitted); status_seq: that of the fact behind the current status, so
-- an older event arriving late on another topic never undoes it; paused_from: the
-- status a request for information interrupted (the pause ends back there).
ALTER TABLE complaints
    ADD COLUMN seq integer NOT NULL DEFAULT 1,
    ADD COLUMN status_seq integer NOT NULL DEFAULT 1,
    ADD COLUMN paused_from text,
    -- Archived for want of an answer: the answer revives it until then.
    ADD COLUMN revive_until timestamptz;

-- The old vocabulary. "responded" was never a status of the lifecycle (a message
-- does not move a complaint); "disputed" was a resolution under dispute that nobody
-- had reopened yet: it stays resolved with its open dispute (never counted resolved).
UPDATE complaints SET paused_from = CASE WHEN acknowledged_at IS NULL
                                         THEN 'assigned' ELSE 'acknowledged' END
    WHERE status = 'info_requested';
UPDATE complaints SET status = CASE status
        WHEN 'routed' THEN 'assigned'
        WHEN 'info_requested' THEN 'waiting_info'
        WHEN 'responded' THEN CASE WHEN acknowledged_at IS NULL
                                   THEN 'assigned' ELSE 'acknowledged' END
        WHEN 'disputed' THEN 'resolved'
        ELSE status END
    WHERE status IN ('routed', 'info_requested', 'responded', 'disputed');

ALTER TABLE complaints ADD CONSTRAINT complaints_status CHECK (status IN (
    'submitted', 'triage', 'assigned', 'acknowledged', 'waiting_info', 'resolved',
    'reopened', 'closed', 'archived', 'rejected', 'withdrawn'));
