"""Personal API keys for the admin API. A key acts as its person, in every account they belong to.

Format `sgp_<43 base64url characters>`; stored as SHA-256, shown once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from siemgate.auth.tokens import token_digest
from siemgate.errors import BadRequest, NotFound, Unauthorized
from siemgate.model.durations import MAX_EXPIRY, MAX_EXPIRY_NS
from siemgate.model.ids import new_id
from siemgate.store.base import AccountStore, ApiKey, MadeWith, User

PREFIX = "sgp_"
MAX_LIVE_KEYS = 50  # per person: neither revoked nor expired (docs/security.md)


class ApiKeyService:
    def __init__(self, store: AccountStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    def create(
        self, user: User, name: str, expires_in_ns: int | None = None, made_with: MadeWith | None = None
    ) -> tuple[str, ApiKey]:
        """A new key (its secret, shown once); ValueError for a blank name, BadRequest for a
        lifetime over MAX_EXPIRY, LimitReached past MAX_LIVE_KEYS, Unauthorized when the
        credential `made_with` (the request's session or key) ended meanwhile. Nothing is written
        then."""
        if not name.strip():
            raise ValueError("an API key needs a name, e.g. the script that uses it")
        if expires_in_ns is not None and expires_in_ns > MAX_EXPIRY_NS:
            raise BadRequest(f"Bad Request: expires: at most {MAX_EXPIRY}; use never for no expiry")
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        key = ApiKey(
            id=new_id(),
            user_id=user.id,
            name=name.strip(),
            key_sha256=token_digest(secret),
            prefix=secret[:10],
            created_at=now,
            expires_at=None if expires_in_ns is None else now + expires_in_ns,
        )
        if not self.store.create_api_key(key, limit=MAX_LIVE_KEYS, made_with=made_with):
            raise Unauthorized(
                "Unauthorized: the session or API key you used has ended (signed out, revoked, or your"
                " password or access changed); nothing was created"
            )
        return secret, key

    def authenticate(self, secret: str) -> tuple[User, ApiKey]:
        """The person a live key belongs to; raises Unauthorized."""
        try:
            key = self.store.get_api_key_by_hash(token_digest(secret))
        except NotFound:
            raise Unauthorized("Unauthorized: this API key is not known to this server") from None
        if key.revoked_at is not None:
            raise Unauthorized("Unauthorized: this API key has been revoked")
        if key.expires_at is not None and self.clock() >= key.expires_at:
            raise Unauthorized("Unauthorized: this API key has expired; create a new one")
        return self.store.get_user_by_id(key.user_id), key
