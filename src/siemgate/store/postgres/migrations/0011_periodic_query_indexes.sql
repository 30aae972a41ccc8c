-- Indexes for reads that run periodically or per request and scanned a whole table (measured in
-- docs/benchmarks.md, "Indexes of the periodic reads"; tests/contract/test_store_plans.py checks
-- the plans). Live tokens (not revoked) are few beside the revoked ones each account keeps: the
-- lifecycle job's due tokens (store.due_tokens) and the signing keys still in use
-- (store.live_token_kids) read only them.
CREATE INDEX tokens_live ON tokens (expires_at, kid) WHERE revoked_at IS NULL;
CREATE INDEX tokens_revocation_due ON tokens (revoke_at) WHERE revoked_at IS NULL AND revoke_at IS NOT NULL;
-- An account's integrations, deleted ones included (integrations_live_name holds the live ones
-- only): read when one is created (its deleted ones past KEEP_ENDED are forgotten) and when the
-- account is deleted.
CREATE INDEX integrations_by_account ON integrations (account_id, created_at, id);
