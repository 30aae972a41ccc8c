-- Alerts that can be worked and explained: each alert keeps the version of the rule that fired it
-- and a state (open, acknowledged, resolved) with who changed it and when; rules count their
-- versions; deliveries can be cancelled (their rule or action was deleted); evaluation steps whose
-- alerts could not be stored are recorded as failures of their rule instead of blocking the stream.
ALTER TABLE alert_rules ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

ALTER TABLE alerts ADD COLUMN rule_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'open'
    CHECK (state IN ('open', 'acknowledged', 'resolved'));
ALTER TABLE alerts ADD COLUMN state_by TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN state_at INTEGER;
CREATE INDEX alerts_by_state ON alerts(account_id, state, fired_at);

CREATE TABLE alert_deliveries_new (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts(id),
    account_id      INTEGER NOT NULL,
    rule_id         TEXT NOT NULL,
    action          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_error      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
INSERT INTO alert_deliveries_new SELECT * FROM alert_deliveries;
DROP TABLE alert_deliveries;
ALTER TABLE alert_deliveries_new RENAME TO alert_deliveries;
CREATE INDEX alert_deliveries_due ON alert_deliveries(status, next_attempt_at);
CREATE INDEX alert_deliveries_by_account ON alert_deliveries(account_id, created_at);
CREATE INDEX alert_deliveries_by_rule ON alert_deliveries(account_id, rule_id, status);

CREATE TABLE alert_failures (
    id          TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    rule_id     TEXT NOT NULL,
    feature     INTEGER,
    at          INTEGER NOT NULL,
    error       TEXT NOT NULL,
    first_seq   INTEGER,
    last_seq    INTEGER,
    events      INTEGER NOT NULL
);
CREATE INDEX alert_failures_by_rule ON alert_failures(account_id, rule_id, at);
