-- Token signing keys and deployment secrets (the cursor MAC key) move from <data_dir>/keys into the
-- store, so every server process — on this machine or another — sees the same keys and rotations.
-- Key files found in the data dir are imported on first start (auth/keys.py).
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    pem         BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    active      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
