-- The ids of accounts, people and integrations are never given again (AUTOINCREMENT), as
-- PostgreSQL's sequences never give them again: SQLite gave a new row the largest id in use plus
-- one, so an account created after the newest one was deleted got its id, and every process that
-- still knew the old account by that id (its uuid, its alert state, its log) took the new one
-- for it. The tables are rebuilt with the same columns, keys and indexes (foreign keys are off
-- while migrations run; the runner checks them before it commits).
CREATE TABLE accounts_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at  INTEGER NOT NULL
);
INSERT INTO accounts_new (id, uuid, name, created_at) SELECT id, uuid, name, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;

CREATE TABLE users_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid            TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name            TEXT NOT NULL,
    password_hash   TEXT,
    home_account_id INTEGER REFERENCES accounts(id),
    created_at      INTEGER NOT NULL
);
INSERT INTO users_new (id, uuid, email, name, password_hash, home_account_id, created_at)
    SELECT id, uuid, email, name, password_hash, home_account_id, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_by_home ON users(home_account_id);

CREATE TABLE integrations_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT NOT NULL UNIQUE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    type        TEXT NOT NULL,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);
INSERT INTO integrations_new (id, uuid, account_id, type, name, description, created_at, deleted_at)
    SELECT id, uuid, account_id, type, name, description, created_at, deleted_at FROM integrations;
DROP TABLE integrations;
ALTER TABLE integrations_new RENAME TO integrations;
CREATE UNIQUE INDEX integrations_live_name ON integrations(account_id, name) WHERE deleted_at IS NULL;
