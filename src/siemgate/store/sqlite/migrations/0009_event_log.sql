-- The tamper-evident log of every stream (docs/integrity.md). One entry per event (index = seq - 1,
-- 41 bytes: format, timestamp, SHA-256 of the stored body), written in the event's transaction.
-- Purges delete event bodies, never entries or hashes: the tree is never rewritten.
CREATE TABLE log_entries (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    entry       BLOB NOT NULL,
    PRIMARY KEY (account_id, feature, idx)
) WITHOUT ROWID;

-- Perfect-node hashes at tree levels 8, 16, 24, ... (one per 256 entries, per 65,536, ...), written
-- by the integrator; every other node is recomputed from these and the entries.
CREATE TABLE log_hashes (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    level       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (account_id, feature, level, idx)
) WITHOUT ROWID;

-- How far the integrator went (size, root of the first `size` entries) and the integrity error
-- that stopped it, if any.
CREATE TABLE log_state (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    root        BLOB NOT NULL,
    error       TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, feature)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP signed notes) and recovery statements, as the signer returned them.
CREATE TABLE log_checkpoints (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (account_id, feature, time)
) WITHOUT ROWID;

CREATE TABLE log_recoveries (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    statement   TEXT NOT NULL,
    PRIMARY KEY (account_id, feature, time)
) WITHOUT ROWID;
