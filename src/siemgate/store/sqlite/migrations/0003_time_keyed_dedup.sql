-- Duplicates are found by (timestamp, uuid) through the timestamp index, which also serves time
-- windows: new events land at the end of that index instead of at random places in a uuid index,
-- so a write touches a few pages instead of about one per event (docs/events.md, "Duplicates").
DROP INDEX events_by_uuid;
DROP INDEX events_by_ts;
CREATE UNIQUE INDEX events_by_time ON events(account_id, feature, ts, uuid);

-- Events sent without a timestamp get the time of receipt; their uuids are remembered here so that
-- sending one again is still recognised as a duplicate.
CREATE TABLE stamped_uuids (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    uuid        TEXT NOT NULL,
    PRIMARY KEY (account_id, feature, uuid)
) WITHOUT ROWID;
