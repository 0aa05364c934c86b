-- Staff identity: people, their roles, sessions/tokens and login attempts.
-- Shared by the router and oversight through the awasi.identity package only.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('staff', 'head', 'triage', 'panel', 'admin')),
    -- The agency (catalog code) of staff and heads; NULL for the others.
    agency        text,
    -- The region (catalog code) a triage officer works; NULL means every region.
    region        text,
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (role NOT IN ('staff', 'head') OR agency IS NOT NULL)
);

-- One kind of token for both the API's Bearer tokens and the desk's session
-- cookie. Only the SHA-256 of the token is stored: a leaked table cannot be
-- replayed as credentials.
CREATE TABLE tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_expires ON tokens (expires_at);

-- Failed login attempts, per username and per client address, for throttling.
-- In the database (not process memory) so that every router and oversight
-- process counts the same attempts.
CREATE TABLE login_failures (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL,
    address       text NOT NULL,
    attempted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_user ON login_failures (username, attempted_at);
CREATE INDEX login_failures_address ON login_failures (address, attempted_at);
