-- Account management: when each user last logged in (shown by `awasi users list`
-- and the admin page), and an append-only log of every change to an account (who
-- changed what, when, on whom) that the oversight panel reads.

ALTER TABLE users ADD COLUMN last_login_at timestamptz;

CREATE TABLE account_audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    -- The username who made the change; 'cli' for the operator's command line.
    actor     text NOT NULL,
    -- add, disable, enable, password_set, password_reset, password_changed,
    -- role_changed.
    action    text NOT NULL,
    target    text NOT NULL,
    -- What changed, never a password or a hash (e.g. {"role": ["staff", "head"]}).
    details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX account_audit_at ON account_audit (at DESC, id DESC);
