-- Names and email addresses are the same "ignoring case" when they differ only in the letters A to Z,
-- as on SQLite (NOCASE): lower() also folded É, Σ or İ by the database's locale, so a person, account
-- or integration name that SQLite holds twice could not be copied here, and lookups disagreed. Only
-- relaxes the unique keys: it cannot fail on a store that 0.1 or 0.2 wrote.
DROP INDEX accounts_name;
CREATE UNIQUE INDEX accounts_name ON accounts
    (translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
DROP INDEX users_email;
CREATE UNIQUE INDEX users_email ON users
    (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
DROP INDEX integrations_live_name;
CREATE UNIQUE INDEX integrations_live_name ON integrations
    (account_id, translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) WHERE deleted_at IS NULL;
DROP INDEX invitations_by_email;
CREATE INDEX invitations_by_email ON invitations
    (translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
