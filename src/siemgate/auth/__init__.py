"""Credentials: signing keys and SIEM tokens (JWTs), ingest keys, rate limiting."""
