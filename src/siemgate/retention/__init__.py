"""Retention: per account and stream, how long events stay; before they leave the store they can
be archived (compressed JSON Lines or Parquet, one file per account, stream and day, with a
manifest of counts and SHA-256 digests), verified, and replayed back in (docs/retention.md)."""
