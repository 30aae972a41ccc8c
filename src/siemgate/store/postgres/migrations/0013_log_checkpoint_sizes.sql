-- The stream's checkpoint of one size, which a proof for that size reads on request
-- (store.log_checkpoint_of_size): without it, the stream's checkpoints newest first until one
-- had the size (all of them when none has: a stream checkpointed every 10 s holds 3 million a
-- year), on PostgreSQL a scan of every stream's (docs/benchmarks.md, "Checkpoints of a long log").
CREATE INDEX log_checkpoints_by_size ON log_checkpoints (account_id, feature, size, time);
