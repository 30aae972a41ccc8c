-- Indexes for the pages of alerts, deliveries and evaluation failures that the console and the API
-- read (measured in docs/benchmarks.md, "Indexes of the alert lists"; tests/contract/
-- test_alert_list_plans.py checks the work). Without them a page filtered by severity or status
-- read the account's rows newest first until it had a page, and the newest failures read and
-- sorted all the account's failures (PostgreSQL: a scan of the table), as did retention's search
-- for old failures, in its write transaction.
CREATE INDEX alerts_by_severity ON alerts (account_id, severity, fired_at);
CREATE INDEX alert_deliveries_by_status ON alert_deliveries (account_id, status, created_at);
CREATE INDEX alert_failures_by_time ON alert_failures (account_id, at);
