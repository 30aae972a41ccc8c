-- Alert rules, their evaluation state, fired alerts and their action deliveries (an outbox),
-- and retention policies. Times are integer nanoseconds since the Unix epoch (UTC).

-- Rules defined for an account (YAML files, admin API) and overrides of starter rules.
CREATE TABLE alert_rules (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    rule_id     TEXT NOT NULL,
    definition  TEXT NOT NULL,
    origin      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, rule_id)
) WITHOUT ROWID;

-- How far rule evaluation has read each stream: saved in the same transaction as the state and
-- the alerts that reading produced, so a restart neither loses nor repeats an evaluation.
CREATE TABLE alert_checkpoints (
    account_id  INTEGER NOT NULL,
    feature     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (account_id, feature)
) WITHOUT ROWID;

-- Sliding windows, first-seen values and suppressions, per rule and key.
CREATE TABLE alert_state (
    account_id  INTEGER NOT NULL,
    rule_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    expires_at  INTEGER,
    PRIMARY KEY (account_id, rule_id, kind, key)
) WITHOUT ROWID;

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    rule_id     TEXT NOT NULL,
    fired_at    INTEGER NOT NULL,
    event_ts    INTEGER NOT NULL,
    severity    TEXT NOT NULL,
    source      TEXT NOT NULL,
    group_key   TEXT NOT NULL,
    summary     TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX alerts_by_rule ON alerts(account_id, rule_id, fired_at);
CREATE INDEX alerts_by_time ON alerts(account_id, fired_at);

CREATE TABLE alert_deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts(id),
    account_id      INTEGER NOT NULL,
    rule_id         TEXT NOT NULL,
    action          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_error      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries(status, next_attempt_at);
CREATE INDEX alert_deliveries_by_account ON alert_deliveries(account_id, created_at);

-- Retention per account and stream; a stream without a row keeps the server default.
CREATE TABLE retention_policies (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    feature     INTEGER NOT NULL,
    days        INTEGER NOT NULL,
    archive     TEXT NOT NULL CHECK (archive IN ('none', 'jsonl', 'parquet')),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, feature)
) WITHOUT ROWID;
