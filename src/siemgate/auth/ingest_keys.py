"""Ingest keys: the producer credential. A key adds events to one account and cannot read any.

Format `sgi_<43 base64url chars>` (256 random bits). Stored as SHA-256; shown once at creation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from siemgate.auth.tokens import token_digest
from siemgate.errors import NotFound, Unauthorized
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, CredentialStore, IngestKey

PREFIX = "sgi_"
MAX_LIVE_KEYS = 100  # per account, not revoked (docs/security.md)


class IngestKeyService:
    def __init__(self, store: CredentialStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    def create(self, account: Account, name: str, features: Sequence[Feature]) -> tuple[str, IngestKey]:
        """Make a key; returns (secret, record). The secret is not stored."""
        if not name.strip():
            raise ValueError("an ingest key needs a name, e.g. the producer that uses it")
        secret = PREFIX + secrets.token_urlsafe(32)
        key = IngestKey(
            id=new_id(),
            account_id=account.id,
            name=name.strip(),
            features=tuple(features),
            key_sha256=token_digest(secret),
            prefix=secret[:10],
            created_at=self.clock(),
        )
        self.store.create_ingest_key(key, limit=MAX_LIVE_KEYS)
        return secret, key

    def authenticate(self, authorization: str | None, feature: Feature) -> IngestKey:
        """The live key for a `Bearer sgi_...` header that may write `feature`; raises Unauthorized."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("Unauthorized: send an ingest key in an 'Authorization: Bearer sgi_...' header")
        secret = authorization[7:].strip()
        if not secret.startswith(PREFIX):
            raise Unauthorized(
                "Unauthorized: this endpoint takes an ingest key (sgi_...), not a SIEM token; create one with"
                " `siemgate ingest-key create`"
            )
        try:
            key = self.store.get_ingest_key_by_hash(token_digest(secret))
        except NotFound:
            raise Unauthorized("Unauthorized: this ingest key is not known to this server") from None
        if key.revoked_at is not None:
            raise Unauthorized("Unauthorized: this ingest key has been revoked")
        if feature not in key.features:
            raise Unauthorized(f"Unauthorized: this ingest key may not write {feature.value}")
        return key
