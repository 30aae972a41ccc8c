"""SIEM bearer tokens: ES256 JWTs shaped like 1Password's Events API tokens.

Claims: `aud` [the public address's host[:port]], `iss`, `sub` (integration uuid), `jti` (token id), `iat`, `exp`
(only when an expiry was chosen), `1password.com/fts` (features), `1password.com/auuid` (account
uuid), `1password.com/token` (token id); header `kid`. The server keeps a TokenRecord with the
token's SHA-256 and checks it on every request, so revocation and expiry apply at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from siemgate.auth.keys import KeyRing
from siemgate.errors import NotFound, Unauthorized
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, CredentialStore, Integration, TokenRecord

ISSUER = "siemgate"
FEATURES_CLAIM = "1password.com/fts"
ACCOUNT_CLAIM = "1password.com/auuid"
TOKEN_CLAIM = "1password.com/token"  # noqa: S105 (a claim name, not a secret)
_CACHE_SIZE = 10_000
MAX_LIVE_TOKENS = 500  # per account: neither revoked nor expired (docs/security.md)
log = logging.getLogger("siemgate.tokens")


def token_digest(token: str) -> str:
    """SHA-256 hex of a token: the only form in which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenService:
    """Issues SIEM tokens and authenticates them on every Events API request."""

    def __init__(self, store: CredentialStore, keys: KeyRing, audience: str, clock: Callable[[], int]) -> None:
        """`audience` (the public address's host[:port]) goes into issued tokens. A token this server
        issued is accepted whatever audience it carries, so changing the public address keeps
        existing tokens working until they are rotated (docs/setup.md, "The public address"): its
        signature, key id and recorded SHA-256 already prove it is this server's own."""
        self.store = store
        self.keys = keys
        self.audience = audience
        self.clock = clock
        # sha256 -> the token's record as verified: its fixed fields (revocation is read every time)
        self._verified: OrderedDict[str, TokenRecord] = OrderedDict()
        self._lock = threading.Lock()
        # Set by the token lifecycle: told about each authenticated token that replaced another.
        self.on_authenticated: Callable[[TokenRecord], None] | None = None

    def issue(
        self,
        account: Account,
        integration: Integration,
        name: str,
        features: Sequence[Feature],
        expires_in_ns: int | None,
        *,
        created_by: int | None = None,
        replaces: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """Sign and record a new token; returns (token, record). The token itself is not stored."""
        if not name.strip():
            raise ValueError("a token needs a name, e.g. the SIEM host it is for")
        if not features:
            raise ValueError("a token needs at least one feature")
        now = self.clock()
        kid, key = self.keys.active()
        token_id = new_id()
        claims: dict[str, Any] = {
            "aud": [self.audience],
            "iss": ISSUER,
            "sub": integration.uuid,
            "jti": token_id,
            "iat": now // NS_PER_SECOND,
            FEATURES_CLAIM: [f.value for f in features],
            ACCOUNT_CLAIM: account.uuid,
            TOKEN_CLAIM: token_id,
        }
        expires_at = None
        if expires_in_ns is not None:
            expires_at = now + expires_in_ns
            claims["exp"] = expires_at // NS_PER_SECOND
        import jwt  # PyJWT loads when a token is issued or first checked, not with the services (start-up time)

        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})
        record = TokenRecord(
            id=token_id,
            account_id=account.id,
            integration_id=integration.id,
            name=name.strip(),
            features=tuple(features),
            kid=kid,
            token_sha256=token_digest(token),
            created_at=now,
            expires_at=expires_at,
            replaces=replaces,
            created_by=created_by,
        )
        self.store.create_token(record, limit=MAX_LIVE_TOKENS)
        return token, record

    def authenticate(self, authorization: str | None) -> TokenRecord:
        """The live token record for an `Authorization: Bearer ...` header value.

        Raises Unauthorized (401) saying why: missing header, not a token of this server, revoked,
        expired. The signature is verified once per token; revocation and expiry every time.
        """
        token = _bearer(authorization)
        digest = token_digest(token)
        record = self._verified.get(digest)
        if record is None:
            record = self._verify_signature(token, digest)
        try:
            revoked_at, revoke_at = self.store.token_revocation(record.id)
        except NotFound:
            raise Unauthorized("Unauthorized: this token is not known to this server") from None
        now = self.clock()
        if revoked_at is not None:
            raise Unauthorized(f"Unauthorized: this token was revoked at {format_ns(revoked_at)}")
        if revoke_at is not None and now >= revoke_at:
            raise Unauthorized("Unauthorized: this token was replaced and its grace period has ended")
        if record.expires_at is not None and now >= record.expires_at:
            raise Unauthorized(f"Unauthorized: this token expired at {format_ns(record.expires_at)}; issue a new one")
        if record.replaces is not None and self.on_authenticated is not None:
            self.on_authenticated(record)
        return record

    def known_account(self, authorization: str | None) -> int | None:
        """The account of the token in `authorization` when this process verified its signature
        before, else None; never reads the store (it runs on the event loop) and checks nothing
        else: for sharing out the process between accounts before `authenticate` (a token
        another account's person forged is not known, so it cannot take that account's turns)."""
        try:
            token = _bearer(authorization)
        except Unauthorized:
            return None
        with self._lock:
            record = self._verified.get(token_digest(token))
        return None if record is None else record.account_id

    def _verify_signature(self, token: str, digest: str) -> TokenRecord:
        """Once per token (then `_verified` answers): PyJWT is imported here, not per request."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("Unauthorized: the bearer token is not a JWT") from None
        if header.get("alg") != "ES256":
            raise Unauthorized("Unauthorized: the bearer token must be signed with ES256")
        public = self.keys.public_key(str(header.get("kid", "")))
        if public is None:
            raise Unauthorized("Unauthorized: the token was not signed by this server (unknown key id)")
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                # expiry and revocation are checked against the server's clock below, not the JWT's;
                # the audience is compared once the token is known to be this server's (below)
                options={
                    "require": ["jti", "iat", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("Unauthorized: the token's signature or claims are invalid") from None
        token_id = str(claims["jti"])
        try:
            record = self.store.get_token(token_id)
        except NotFound:
            raise Unauthorized("Unauthorized: this token is not known to this server") from None
        if record.token_sha256 != digest:
            raise Unauthorized("Unauthorized: this token is not known to this server")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if self.audience not in audiences:
            log.warning(
                "token %s carries the former address %s; this server is now %s: it keeps working until"
                " it is rotated (siemgate token rotate %s)",
                token_id,
                ", ".join(map(str, audiences)),
                self.audience,
                token_id,
            )
        with self._lock:
            self._verified[digest] = record
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return record


def require_feature(record: TokenRecord, feature: Feature) -> None:
    """Raise Unauthorized (401, as the Events API does) when the token lacks the feature."""
    if feature not in record.features:
        have = ", ".join(f.value for f in record.features)
        raise Unauthorized(
            f"Unauthorized: this token may read {have} but not {feature.value}; issue a token that includes it"
        )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Unauthorized: send the token in an 'Authorization: Bearer <token>' header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Unauthorized: the Authorization header must be 'Bearer <token>'")
    return token.strip()
