-- Identity: invitations to join an account, TOTP two-factor sign-in with recovery codes, and an
-- account's sign-in policy (docs/security.md).

CREATE TABLE invitations (
    id           text PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts(id),
    email        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'administrator', 'member')),
    code_sha256  text NOT NULL UNIQUE,
    invited_by   bigint REFERENCES users(id),
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'revoked')),
    decided_at   bigint,
    decided_by   bigint REFERENCES users(id)
);
CREATE INDEX invitations_by_account ON invitations (account_id);
CREATE INDEX invitations_by_email ON invitations (lower(email));

CREATE TABLE two_factor (
    user_id     bigint PRIMARY KEY REFERENCES users(id),
    secret      text NOT NULL,
    created_at  bigint NOT NULL,
    enabled_at  bigint,
    last_step   bigint
);

CREATE TABLE recovery_codes (
    user_id      bigint NOT NULL REFERENCES users(id),
    code_sha256  text NOT NULL,
    created_at   bigint NOT NULL,
    used_at      bigint,
    PRIMARY KEY (user_id, code_sha256)
);

CREATE TABLE account_policies (
    account_id          bigint PRIMARY KEY REFERENCES accounts(id),
    require_two_factor  integer NOT NULL DEFAULT 0
);
