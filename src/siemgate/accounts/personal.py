"""A person's own credentials — password, two-factor sign-in, recovery codes, personal API keys,
console sessions — and an account's two-factor requirement, each change recorded in the audit
trail of every account the person belongs to (a person's credentials reach all of them).

Only the person changes their credentials, except the operator's resets (`siemgate user
password`, `siemgate user reset-two-factor`): a reset not done by the person revokes all their
personal API keys and ends all their sessions, since whoever held them may not be the person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from siemgate.accounts.actor import Actor
from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.people import PeopleService, check_name
from siemgate.auth import totp
from siemgate.auth.api_keys import ApiKeyService
from siemgate.auth.passwords import hash_password, verify_password
from siemgate.auth.signin_limits import SignInLimiter
from siemgate.errors import BadRequest, Conflict, Forbidden, NotFound
from siemgate.model.text import excerpt
from siemgate.model.timestamps import NS_PER_SECOND, format_ns
from siemgate.store.base import Account, ApiKey, MadeWith, Store, User
from siemgate.store.shared.identity import FactorUse

API_KEY = "personal API key"


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str


@dataclass(frozen=True, slots=True)
class Reset:
    revoked_api_keys: list[str]
    ended_sessions: int


class PersonalService:
    def __init__(
        self,
        store: Store,
        api_keys: ApiKeyService,
        people: PeopleService,
        audit: AuditRecorder,
        limiter: SignInLimiter,
        clock: Callable[[], int],
    ) -> None:
        self.store = store
        self.api_keys = api_keys
        self.people = people
        self.audit = audit
        self.limiter = limiter
        self.clock = clock
        self.box = totp.SecretBox(store, clock())
        self.box.bind_stored(store, clock())  # secrets an older release sealed, once per store

    # personal API keys --------------------------------------------------------------------------
    def create_api_key(
        self, actor: Actor, user: User, name: str, expires_in_ns: int | None, password: str | None = None
    ) -> tuple[str, ApiKey]:
        """A new key of the person. Through a console session it takes the person's password
        (BadRequest without it, Forbidden when wrong): a key outlives the session, so whoever
        holds only a copied cookie must not turn it into a lasting credential."""
        if not check_name(name).strip():
            raise BadRequest("Bad Request: name: an API key needs a name, e.g. the script that uses it")
        if actor.via == "session":
            if password is None:
                raise BadRequest("Bad Request: password: give your password to create an API key from the console")
            self.check_current(actor, user, password)
        made_with = None
        if actor.via in ("session", "api_key") and actor.credential_id is not None:
            made_with = MadeWith(actor.via, actor.credential_id)
        secret, key = self.api_keys.create(user, name, expires_in_ns, made_with)
        self.audit.record_for(
            user,
            actor,
            "create",
            "cred",
            object_uuid=key.id,
            aux_info={
                "kind": API_KEY,
                "name": key.name,
                "owner": user.uuid,
                "expires_at": format_ns(key.expires_at) if key.expires_at else None,
            },
        )
        return secret, key

    def revoke_api_key(self, actor: Actor, user: User, key_id: str) -> ApiKey:
        """Revoke one of the person's keys (idempotent; NotFound for anyone else's)."""
        try:
            before = next(k for k in self.store.list_api_keys(user.id) if k.id == key_id)
        except StopIteration:
            raise NotFound(f"Not Found: you have no API key {excerpt(key_id)}") from None
        key = self.store.revoke_api_key(user.id, key_id, self.clock())
        if before.revoked_at is None:
            self.audit.record_for(
                user,
                actor,
                "revoke",
                "cred",
                object_uuid=key.id,
                aux_info={"kind": API_KEY, "name": key.name, "owner": user.uuid},
            )
        return key

    # passwords ----------------------------------------------------------------------------------
    def check_current(self, actor: Actor, user: User, password: str, field: str = "password") -> None:
        """Forbidden (403, naming the request's `field`) unless `password` is the person's, counted
        like a password at sign-in (counted before it is checked; a right one clears the count of
        the person's address and this IP, as at sign-in). Not 401: the person is signed in, and
        401 means their credential is not (the console sends a 401 to the sign-in page, losing
        what was typed)."""
        self.limiter.password_attempt(user.email, actor.ip)
        if not verify_password(user.password_hash, password):
            self.limiter.password_failed(user.email, actor.ip)
            raise Forbidden(f"Forbidden: {field}: the password is not right; nothing was changed")
        self.limiter.succeeded(user.email, actor.ip)

    def change_password(self, actor: Actor, user: User, current: str, new: str) -> int:
        """The person changes their own password; their other sessions end. Returns how many."""
        self.check_current(actor, user, current, "current_password")
        try:
            password_hash = hash_password(new)
        except ValueError as exc:
            raise BadRequest(f"Bad Request: new_password: {exc}") from None
        keep = actor.credential_id if actor.via == "session" else None
        ended = self.store.set_password(user.id, password_hash, keep=keep).sessions
        self.audit.record_for(
            user, actor, "changemp", "user", object_user=user, aux_info={"by": "self", "ended_sessions": ended}
        )
        return ended

    def reset_password(self, actor: Actor, user: User, new: str) -> Reset:
        """The operator sets a person's password: every API key and session of theirs ends."""
        try:
            password_hash = hash_password(new)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        ended = self.store.set_password(user.id, password_hash, revoke_keys_at=self.clock())
        reset = Reset(ended.api_keys, ended.sessions)
        self.audit.record_for(
            user,
            actor,
            "changemp",
            "user",
            object_user=user,
            aux_info={
                "by": "operator",
                "revoked_api_keys": reset.revoked_api_keys,
                "ended_sessions": reset.ended_sessions,
            },
        )
        return reset

    # two-factor ---------------------------------------------------------------------------------
    def begin_two_factor(self, user: User) -> Enrolment:
        """A new TOTP secret for the person's authenticator app; on once confirmed with a code."""
        secret = totp.new_secret()
        self.store.begin_two_factor(user.id, self.box.seal(secret, user.uuid), self.clock())
        return Enrolment(secret, totp.provisioning_uri(secret, user.email))

    def confirm_two_factor(self, actor: Actor, user: User, code: str, password: str) -> list[str]:
        """Turn two-factor on with a first code and the person's password (so that a session or key
        alone cannot lock the person out with an authenticator of its own); returns ten new
        recovery codes (shown once). The person's other sessions end in the same transaction:
        every session left was signed in with two factors."""
        self.check_current(actor, user, password)
        enrolment = self.store.get_two_factor(user.id)
        if enrolment is None or enrolment.enabled_at is not None:
            raise Conflict("start enrolment first (POST /api/admin/v1/me/two-factor)")
        step = totp.matching_step(self.box.open(enrolment.secret, user.uuid), code, self.clock() / NS_PER_SECOND)
        codes = totp.new_recovery_codes()
        keep = actor.credential_id if actor.via == "session" else None
        digests = [totp.recovery_digest(c) for c in codes]
        ended = None
        if step is not None:
            ended = self.store.enable_two_factor(user.id, enrolment.secret, step, self.clock(), digests, keep=keep)
        if ended is None:
            raise BadRequest("Bad Request: code: not the current code of your authenticator app; try the next one")
        self.audit.record_for(
            user, actor, "enblmfa", "user", object_user=user, aux_info={"kind": "totp", "ended_sessions": ended}
        )
        return codes

    def count_code(self, user: User, code: str, ip: str) -> bool:
        """Count an attempt at `code` towards the limits of its kind before it is checked
        (auth.signin_limits: an authenticator code per person, a recovery code per person and IP
        and per IP); RateLimited when one is full. True when `code` is read as a recovery code."""
        recovery = totp.looks_like_recovery_code(code)
        self.limiter.second_factor_attempt(user.uuid, ip, recovery_code=recovery)
        return recovery

    def check_code(self, user: User, code: str) -> str | None:
        """'totp' or 'recovery code' when `code` is a valid, unused second factor of the person."""
        enrolment = self.store.get_two_factor(user.id)
        if enrolment is None or enrolment.enabled_at is None:
            return None
        if totp.looks_like_recovery_code(code):
            used = self.store.use_recovery_code(user.id, totp.recovery_digest(code), self.clock())
            return "recovery code" if used else None
        step = totp.matching_step(self.box.open(enrolment.secret, user.uuid), code, self.clock() / NS_PER_SECOND)
        if step is not None and self.store.use_totp_step(user.id, step):
            return "totp"
        return None

    def second_factor(self, actor: Actor, user: User, code: str | None) -> FactorUse:
        """The second factor `code` offers to change two-factor itself (turn it off, new recovery
        codes): a current TOTP code or a recovery code, for the store to spend in the change's
        transaction. The attempt counts towards the limits of the sign-in's second step
        (`count_code`; RateLimited once one is reached); Forbidden (403, naming `code`) for a code
        that matches no step of the person's authenticator now; BadRequest without one."""
        if code is None:
            raise BadRequest(
                "Bad Request: code: give a current code of your authenticator app, or an unused recovery code,"
                " as well as your password"
            )
        if self.count_code(user, code, actor.ip):
            return FactorUse(recovery_digest=totp.recovery_digest(code))
        enrolment = self.store.get_two_factor(user.id)
        secret = self.box.open(enrolment.secret, user.uuid) if enrolment is not None else None
        step = totp.matching_step(secret, code, self.clock() / NS_PER_SECOND) if secret else None
        if step is None:
            self._wrong_code()
        return FactorUse(step=step)

    @staticmethod
    def _wrong_code() -> NoReturn:
        """Refuse the change: the second factor given is wrong or used (counted already)."""
        raise Forbidden(
            "Forbidden: code: not a current code of your authenticator app nor an unused recovery code"
            " (a code works once); nothing was changed"
        )

    def new_recovery_codes(self, actor: Actor, user: User, password: str, code: str | None) -> list[str]:
        """Ten new recovery codes (the old ones stop working), for the person's password and a
        second factor (`second_factor`): the password alone would let whoever also holds a session
        mint codes that sign in without the person's phone. Conflict when two-factor is off."""
        self.check_current(actor, user, password)
        if not self.people.has_two_factor(user):
            raise Conflict("turn two-factor sign-in on first; recovery codes come with it")
        use = self.second_factor(actor, user, code)
        codes = totp.new_recovery_codes()
        if not self.store.replace_recovery_codes(user.id, [totp.recovery_digest(c) for c in codes], self.clock(), use):
            self._wrong_code()
        self.audit.record_for(user, actor, "updatmfa", "user", object_user=user, aux_info={"kind": "recovery codes"})
        return codes

    def disable_two_factor(self, actor: Actor, user: User, password: str, code: str | None) -> None:
        """The person turns two-factor off with their password and a second factor
        (`second_factor`: a session and a phished password are not enough), spent in the same
        transaction. Conflict, nothing changed, while an account they belong to requires it (an
        owner requiring it at the same moment is ordered with this: store.delete_two_factor).
        Without two-factor on, an unconfirmed enrolment is dropped with the password alone."""
        self.check_current(actor, user, password)
        on = self.people.has_two_factor(user)
        use = self.second_factor(actor, user, code) if on else None
        if not self.store.delete_two_factor(user.id, use, self.clock()):
            self._wrong_code()
        if on:
            self.audit.record_for(user, actor, "disblmfa", "user", object_user=user, aux_info={"by": "self"})

    def reset_two_factor(self, actor: Actor, user: User) -> Reset:
        """The operator turns a person's two-factor off (a lost phone): every API key and session
        of theirs ends in the same transaction; they sign in with their password and enrol again."""
        ended = self.store.reset_two_factor(user.id, self.clock())
        if ended is None:
            raise Conflict(f"{user.email} has no two-factor sign-in to reset")
        reset = Reset(ended.api_keys, ended.sessions)
        self.audit.record_for(
            user,
            actor,
            "disblmfa",
            "user",
            object_user=user,
            aux_info={
                "by": "operator",
                "revoked_api_keys": reset.revoked_api_keys,
                "ended_sessions": reset.ended_sessions,
            },
        )
        return reset

    # the account's requirement ------------------------------------------------------------------
    def require_two_factor(self, actor: Actor, account: Account, required: bool) -> bool:
        """Owners require (or stop requiring) two-factor sign-in of every member."""
        self.people.require(actor, account, "owner", "change the two-factor requirement")
        if self.store.requires_two_factor(account.id) == required:
            return required
        owner_id = actor.user.id if actor.user is not None else None
        if not self.store.set_requires_two_factor(account.id, required, owner_id=owner_id):
            raise Conflict("turn two-factor sign-in on for yourself first, or you would be locked out")
        self.audit.record(
            account,
            actor,
            "enblmfa" if required else "disblmfa",
            "account",
            object_uuid=account.uuid,
            aux_info={"kind": "two-factor requirement", "required": required},
        )
        return required

    # sessions -----------------------------------------------------------------------------------
    def sign_out_everywhere(self, actor: Actor, user: User) -> int:
        """End every console session of the person, the actor's own included (a stolen cookie's
        too), and record it; returns how many ended."""
        ended = self.store.end_sessions(user.id)
        self.audit.record_for(
            user,
            actor,
            "revoke",
            "dlgdsess",
            object_uuid=user.uuid,
            aux_info={"kind": "console session", "reason": "signed out everywhere", "ended_sessions": ended},
        )
        return ended

    def sign_out(self, actor: Actor) -> None:
        """End the actor's console session and record it."""
        if actor.user is None or actor.via != "session" or actor.credential_id is None:
            return
        self.store.delete_session(actor.credential_id)
        self.audit.record_for(
            actor.user,
            actor,
            "revoke",
            "dlgdsess",
            object_uuid=actor.credential_id,
            aux_info={"kind": "console session", "reason": "signed out"},
        )
