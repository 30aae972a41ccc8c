-- An account being deleted (docs/setup.md, "Deleting an account"): marked in the deletion's first
-- transaction, from when it is not found and nothing is stored into it; its rows then go in
-- transactions of bounded size, so that other accounts' writes run between them.
ALTER TABLE accounts ADD COLUMN deleting_at INTEGER;
