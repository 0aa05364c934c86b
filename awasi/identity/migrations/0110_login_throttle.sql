-- Login throttling as counters that one statement increments and reads.
--
-- 0100's login_failures was counted with a SELECT and written after the password
-- check: a burst of concurrent guesses all read the count before any wrote it, and
-- all got checked. Here each attempt takes its slot with INSERT ... ON CONFLICT DO
-- UPDATE ... RETURNING, which locks the counter row: concurrent attempts queue on
-- the row and each sees the count the one before left (awasi/identity/store.py).
--
-- scope: 'pair' (key "<address> <username>"), 'account' (key: the username) or
-- 'address' (key: the client address). A fixed window per row: window_start and the
-- attempts counted since.
CREATE TABLE login_throttle (
    scope         text NOT NULL CHECK (scope IN ('pair', 'account', 'address')),
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    attempts      integer NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_throttle_window ON login_throttle (window_start);

DROP TABLE login_failures;
