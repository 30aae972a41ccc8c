-- Alerts that can be worked and explained: each alert keeps the version of the rule that fired it
-- and a state (open, acknowledged, resolved) with who changed it and when; rules count their
-- versions; deliveries can be cancelled (their rule or action was deleted); evaluation steps whose
-- alerts could not be stored are recorded as failures of their rule instead of blocking the stream.
ALTER TABLE alert_rules ADD COLUMN version bigint NOT NULL DEFAULT 1;

ALTER TABLE alerts ADD COLUMN rule_version bigint NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN state text NOT NULL DEFAULT 'open'
    CHECK (state IN ('open', 'acknowledged', 'resolved'));
ALTER TABLE alerts ADD COLUMN state_by text NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN state_at bigint;
CREATE INDEX alerts_by_state ON alerts (account_id, state, fired_at);

ALTER TABLE alert_deliveries DROP CONSTRAINT alert_deliveries_status_check;
ALTER TABLE alert_deliveries ADD CONSTRAINT alert_deliveries_status_check
    CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled'));
CREATE INDEX alert_deliveries_by_rule ON alert_deliveries (account_id, rule_id, status);

CREATE TABLE alert_failures (
    id          text PRIMARY KEY,
    account_id  bigint NOT NULL,
    rule_id     text NOT NULL,
    feature     bigint,
    at          bigint NOT NULL,
    error       text NOT NULL,
    first_seq   bigint,
    last_seq    bigint,
    events      bigint NOT NULL
);
CREATE INDEX alert_failures_by_rule ON alert_failures (account_id, rule_id, at);
