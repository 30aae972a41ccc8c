-- The server's own log of operations on whole accounts (an account deleted, with what was removed):
-- kept by the server, not by any account, so it outlives the account it names (docs/setup.md,
-- "Deleting an account").
CREATE TABLE operations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    action        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    account_uuid  TEXT NOT NULL,
    account_name  TEXT NOT NULL,
    detail        TEXT NOT NULL
);
