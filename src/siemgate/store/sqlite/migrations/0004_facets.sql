-- Facets of each event (see model/facets.py) for the explorer and dashboards, clustered by time so
-- a time range is one contiguous read of small rows. Filled for events already stored.
CREATE TABLE facets (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    actor       TEXT,
    kind        TEXT,
    detail      TEXT,
    country     TEXT,
    app         TEXT,
    ip          TEXT,
    PRIMARY KEY (account_id, feature, ts, seq)
) WITHOUT ROWID;

INSERT INTO facets
SELECT account_id, feature, ts, seq,
       CASE feature WHEN 1 THEN json_extract(body, '$.target_user.email')
                    WHEN 2 THEN json_extract(body, '$.user.email')
                    ELSE json_extract(body, '$.actor_details.email') END,
       CASE feature WHEN 1 THEN json_extract(body, '$.category') ELSE json_extract(body, '$.action') END,
       CASE feature WHEN 1 THEN json_extract(body, '$.type')
                    WHEN 2 THEN json_extract(body, '$.vault_uuid')
                    ELSE json_extract(body, '$.object_type') END,
       CASE feature WHEN 1 THEN coalesce(json_extract(body, '$.country'), json_extract(body, '$.location.country'))
                    ELSE json_extract(body, '$.location.country') END,
       CASE feature WHEN 3 THEN NULL ELSE json_extract(body, '$.client.app_name') END,
       CASE feature WHEN 3 THEN json_extract(body, '$.session.ip') ELSE json_extract(body, '$.client.ip_address') END
FROM events;
