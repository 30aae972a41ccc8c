-- Accounts, integrations, SIEM tokens, ingest keys and the event logs.
-- Times are integer nanoseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE integrations (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    type        TEXT NOT NULL,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    integration_id INTEGER NOT NULL REFERENCES integrations(id),
    name          TEXT NOT NULL,
    features      TEXT NOT NULL,
    kid           TEXT NOT NULL,
    token_sha256  TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER
);
CREATE INDEX tokens_by_account ON tokens(account_id);

-- How far each token's consumer has read each stream (from its last cursor use).
CREATE TABLE token_usage (
    token_id     TEXT NOT NULL REFERENCES tokens(id),
    feature      INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, feature)
) WITHOUT ROWID;

CREATE TABLE ingest_keys (
    id           TEXT PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    features     TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- One row per (account, feature) log: the last seq given and the largest timestamp stored.
CREATE TABLE streams (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    head_seq    INTEGER NOT NULL,
    max_ts      INTEGER NOT NULL,
    PRIMARY KEY (account_id, feature)
) WITHOUT ROWID;

-- The logs, clustered by (account, feature, seq) so a page is one contiguous range read.
-- max_ts is the largest timestamp among this event and every earlier one of its stream: it only
-- grows with seq, so the first seq whose window may start at time S is found by binary search.
CREATE TABLE events (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    max_ts      INTEGER NOT NULL,
    uuid        TEXT NOT NULL,
    body        BLOB NOT NULL,
    v1_cut      INTEGER,
    PRIMARY KEY (account_id, feature, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_by_uuid ON events(account_id, feature, uuid);
CREATE INDEX events_by_ts ON events(account_id, feature, ts);
