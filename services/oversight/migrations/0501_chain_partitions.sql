-- The audit chain in partitions (services/oversight/chain.py says why): an entry goes
-- to the partition of its complaint (chain_check.partition_of), with a gap-free
-- part_seq and prev_hash per partition and one head row per partition, so appends
-- for unrelated complaints no longer queue on one row lock.
--
-- Existing entries stay as they are: the closed "legacy" chain (part NULL, positions
-- = seq), whose head is chain_head, which no code writes any more. Every partition starts from
-- the legacy head's hash, so the legacy chain is anchored by every later entry and
-- by every checkpoint; checkpoints signed before this migration keep verifying.
ALTER TABLE timeline ADD COLUMN part smallint, ADD COLUMN part_seq bigint,
    ADD CONSTRAINT timeline_part_seq CHECK ((part IS NULL) = (part_seq IS NULL));
CREATE UNIQUE INDEX timeline_partition ON timeline (part, part_seq) WHERE part IS NOT NULL;

-- seq stays the entry's row id (and the order entries were written in), now from a
-- sequence: gaps there mean nothing, the hash chain is per partition.
CREATE SEQUENCE timeline_seq OWNED BY timeline.seq;
SELECT setval('timeline_seq', greatest((SELECT last_seq FROM chain_head), 1),
              (SELECT last_seq FROM chain_head) > 0);
ALTER TABLE timeline ALTER COLUMN seq SET DEFAULT nextval('timeline_seq');

CREATE TABLE chain_heads (
    part      smallint PRIMARY KEY CHECK (part >= 0 AND part < 64),
    last_seq  bigint NOT NULL DEFAULT 0,
    last_hash text NOT NULL
);
INSERT INTO chain_heads (part, last_hash)
    SELECT p, (SELECT last_hash FROM chain_head) FROM generate_series(0, 63) AS p;
-- A checkpoint now signs every head (version 2): heads is [[part, seq, hash], ...]
-- with the legacy head as part -1; seq is the number of entries, head_hash the hash
-- over the heads (chain_check.heads_digest). NULL heads: a version 1 checkpoint.
ALTER TABLE checkpoints ADD COLUMN heads jsonb;

-- Incremental verification remembers a point per stream: {"-1": [seq, hash], "0": ...}.
ALTER TABLE chain_verified ADD COLUMN points jsonb;
