-- Identity: invitations to join an account, TOTP two-factor sign-in with recovery codes, and an
-- account's sign-in policy (docs/security.md).

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    email        TEXT NOT NULL COLLATE NOCASE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'administrator', 'member')),
    code_sha256  TEXT NOT NULL UNIQUE,
    invited_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    decided_at   INTEGER,
    decided_by   INTEGER REFERENCES users(id)
);
CREATE INDEX invitations_by_account ON invitations(account_id);
CREATE INDEX invitations_by_email ON invitations(email);

CREATE TABLE two_factor (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id),
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    enabled_at  INTEGER,
    last_step   INTEGER
);

CREATE TABLE recovery_codes (
    user_id      INTEGER NOT NULL REFERENCES users(id),
    code_sha256  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    used_at      INTEGER,
    PRIMARY KEY (user_id, code_sha256)
) WITHOUT ROWID;

CREATE TABLE account_policies (
    account_id          INTEGER PRIMARY KEY REFERENCES accounts(id),
    require_two_factor  INTEGER NOT NULL DEFAULT 0
);
