-- The tamper-evident log of every stream (docs/integrity.md). One entry per event (index = seq - 1,
-- 41 bytes: format, timestamp, SHA-256 of the stored body), written in the event's transaction.
-- Purges delete event bodies, never entries or hashes: the tree is never rewritten.
CREATE TABLE log_entries (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    idx         bigint NOT NULL,
    entry       bytea NOT NULL,
    PRIMARY KEY (account_id, feature, idx)
);

-- Perfect-node hashes at tree levels 8, 16, 24, ... (one per 256 entries, per 65,536, ...), written
-- by the integrator; every other node is recomputed from these and the entries.
CREATE TABLE log_hashes (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    level       bigint NOT NULL,
    idx         bigint NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (account_id, feature, level, idx)
);

-- How far the integrator went (size, root of the first `size` entries) and the integrity error
-- that stopped it, if any.
CREATE TABLE log_state (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    size        bigint NOT NULL,
    root        bytea NOT NULL,
    error       text,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (account_id, feature)
);

-- Signed checkpoints (C2SP signed notes) and recovery statements, as the signer returned them.
CREATE TABLE log_checkpoints (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    time        bigint NOT NULL,
    size        bigint NOT NULL,
    note        text NOT NULL,
    PRIMARY KEY (account_id, feature, time)
);

CREATE TABLE log_recoveries (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    time        bigint NOT NULL,
    statement   text NOT NULL,
    PRIMARY KEY (account_id, feature, time)
);
