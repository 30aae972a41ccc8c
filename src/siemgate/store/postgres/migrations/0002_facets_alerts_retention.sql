-- As SQLite migrations 0004 and 0005: facets of each event for the explorer and dashboards
-- (partitioned like `events`, each day's partition created and dropped with the events'), alert
-- rules, their evaluation state, fired alerts and their deliveries, and retention policies.

CREATE TABLE facets (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    ts          bigint NOT NULL,
    seq         bigint NOT NULL,
    actor       text,
    kind        text,
    detail      text,
    country     text,
    app         text,
    ip          text
) PARTITION BY RANGE (feature, ts);
CREATE UNIQUE INDEX facets_by_time ON facets (account_id, feature, ts, seq);

CREATE TABLE alert_rules (
    account_id  bigint NOT NULL REFERENCES accounts(id),
    rule_id     text NOT NULL,
    definition  text NOT NULL,
    origin      text NOT NULL,
    enabled     bigint NOT NULL,
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    PRIMARY KEY (account_id, rule_id)
);

CREATE TABLE alert_checkpoints (
    account_id  bigint NOT NULL,
    feature     bigint NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (account_id, feature)
);

CREATE TABLE alert_state (
    account_id  bigint NOT NULL,
    rule_id     text NOT NULL,
    kind        text NOT NULL,
    key         text NOT NULL,
    value       text NOT NULL,
    expires_at  bigint,
    PRIMARY KEY (account_id, rule_id, kind, key)
);

CREATE TABLE alerts (
    id          text PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    rule_id     text NOT NULL,
    fired_at    bigint NOT NULL,
    event_ts    bigint NOT NULL,
    severity    text NOT NULL,
    source      text NOT NULL,
    group_key   text NOT NULL,
    summary     text NOT NULL,
    payload     text NOT NULL
);
CREATE INDEX alerts_by_rule ON alerts (account_id, rule_id, fired_at);
CREATE INDEX alerts_by_time ON alerts (account_id, fired_at);

CREATE TABLE alert_deliveries (
    id              text PRIMARY KEY,
    alert_id        text NOT NULL REFERENCES alerts(id),
    account_id      bigint NOT NULL,
    rule_id         text NOT NULL,
    action          text NOT NULL,
    kind            text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        bigint NOT NULL,
    next_attempt_at bigint,
    last_error      text NOT NULL,
    created_at      bigint NOT NULL,
    delivered_at    bigint
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_by_account ON alert_deliveries (account_id, created_at);

CREATE TABLE retention_policies (
    account_id  bigint NOT NULL REFERENCES accounts(id),
    feature     bigint NOT NULL,
    days        bigint NOT NULL,
    archive     text NOT NULL CHECK (archive IN ('none', 'jsonl', 'parquet')),
    updated_at  bigint NOT NULL,
    PRIMARY KEY (account_id, feature)
);
