-- Log entries are packed (docs/integrity.md, "In the store"): one row per ingest batch, `idx` the
-- index of its first entry, `entries` its 41-byte entries in index order. A row written before
-- holds one entry: a chunk of one.
ALTER TABLE log_entries RENAME COLUMN entry TO entries;
