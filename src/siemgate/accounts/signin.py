"""Console sign-in: password, then the TOTP (or recovery code) step for people who turned
two-factor on; failed attempts are limited per address and IP (auth.signin_limits) and recorded in
the `signinattempts` stream of each account the person belongs to (docs/audit.md). People sign
in with their email (any case), never their uuid.

A sign-in either opens a session at once (`SignIn`) or, for a person with two-factor, returns a
signed 5-minute challenge to present with the code; no session exists before both steps pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from siemgate.accounts.audit import AuditRecorder
from siemgate.accounts.personal import PersonalService
from siemgate.auth.sessions import BAD_CREDENTIALS, SessionService, SignIn
from siemgate.auth.signin_limits import SignInLimiter
from siemgate.errors import Unauthorized
from siemgate.store.base import Account, Store, User


@dataclass(frozen=True, slots=True)
class Challenge:
    user: User
    challenge: str


@dataclass(frozen=True, slots=True)
class Client:
    ip: str
    user_agent: str


class SignInFlow:
    def __init__(
        self,
        store: Store,
        sessions: SessionService,
        limiter: SignInLimiter,
        personal: PersonalService,
        audit: AuditRecorder,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.limiter = limiter
        self.personal = personal
        self.audit = audit

    def password(self, email: str, password: str, client: Client) -> SignIn | Challenge:
        """The password step. Raises RateLimited (429) before checking anything when this address
        and IP (or this IP) failed too often, else Unauthorized for a wrong address or password.
        Failures count once per person, under their email as stored; an address no one has
        counts under itself."""
        person = self.sessions.person(email)
        login = person.email if person else email
        self.limiter.password_attempt(login, client.ip)
        user = self.sessions.check_password(person, password)
        if user is None:
            self.limiter.password_failed(login, client.ip)
            self._record_failure(person, client)
            raise Unauthorized(BAD_CREDENTIALS)
        self.limiter.succeeded(login, client.ip)
        if self.personal.people.has_two_factor(user):
            return Challenge(user, self.sessions.challenge(user))
        return self._open(user, client, "credentials_ok")

    def second_factor(self, challenge: str, code: str, client: Client) -> SignIn:
        """The two-factor step: a current TOTP code or an unused recovery code. The attempt is
        recorded with the kind of code in `details.value` ("authenticator code" or "recovery
        code"), so an owner can tell a password holder's guesses from the person's recovery."""
        user = self.sessions.redeem(challenge)
        recovery = self.personal.count_code(user, code, client.ip)
        factor = "recovery code" if recovery else "authenticator code"
        if self.personal.check_code(user, code) is None:
            for account in self._accounts(user):
                self.audit.sign_in(
                    account,
                    user,
                    success=False,
                    ip=client.ip,
                    user_agent=client.user_agent,
                    session_id=None,
                    category="mfa_failed",
                    type="totp_bad",
                    details=factor,
                )
            raise Unauthorized("Unauthorized: the code is not right (or was used already); try the next one")
        self.limiter.second_factor_succeeded(user.uuid, client.ip, recovery_code=recovery)
        return self._open(user, client, "mfa_ok", factor)

    def _open(self, user: User, client: Client, kind: str, factor: str | None = None) -> SignIn:
        result = self.sessions.open(user, client.ip, client.user_agent, second_factor=kind == "mfa_ok")
        for account in self._accounts(user):
            self.audit.sign_in(
                account,
                user,
                success=True,
                ip=client.ip,
                user_agent=client.user_agent,
                session_id=result.session.id,
                type=kind,
                details=factor,
            )
        return result

    def _record_failure(self, person: User | None, client: Client) -> None:
        if person is None:
            return  # no account to record it in; the failure still counts towards the limits
        for account in self._accounts(person):
            self.audit.sign_in(
                account, person, success=False, ip=client.ip, user_agent=client.user_agent, session_id=None
            )

    def _accounts(self, user: User) -> list[Account]:
        return [self.store.get_account_by_id(m.account_id) for m in self.store.list_memberships(user.id)]
