-- People and roles, personal API keys, console sessions, integration deletion, token lifecycle.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    uuid            TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name            TEXT NOT NULL,
    password_hash   TEXT,
    home_account_id INTEGER REFERENCES accounts(id),
    created_at      INTEGER NOT NULL
);

CREATE TABLE memberships (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'administrator', 'member')),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships(user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    key_sha256   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys(user_id);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    token_sha256  TEXT NOT NULL UNIQUE,
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    ip            TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions(user_id);

-- Integrations are deleted softly (their tokens stay on record, revoked); names are unique among
-- the live ones. SQLite cannot drop a table constraint, so the table is rebuilt.
CREATE TABLE integrations_new (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    type        TEXT NOT NULL,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
INSERT INTO integrations_new (id, uuid, account_id, type, name, description, created_at)
    SELECT id, uuid, account_id, type, name, description, created_at FROM integrations;
DROP TABLE integrations;
ALTER TABLE integrations_new RENAME TO integrations;
CREATE UNIQUE INDEX integrations_live_name ON integrations(account_id, name) WHERE deleted_at IS NULL;

-- Token lifecycle: rotation (the replacement, and when the old token is revoked at the latest),
-- who issued it, and which lifecycle audit events have been recorded.
ALTER TABLE tokens ADD COLUMN replaces TEXT REFERENCES tokens(id);
ALTER TABLE tokens ADD COLUMN revoke_at INTEGER;
ALTER TABLE tokens ADD COLUMN revoke_on_replacement_use INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN created_by INTEGER REFERENCES users(id);
ALTER TABLE tokens ADD COLUMN expiry_warned_at INTEGER;
ALTER TABLE tokens ADD COLUMN expiry_recorded_at INTEGER;
CREATE INDEX tokens_by_integration ON tokens(integration_id);
