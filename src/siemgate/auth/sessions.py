"""Console sign-in sessions: a random cookie value (stored as SHA-256), a CSRF token, a sliding
idle expiry under an absolute lifetime; the cookie's name and attributes; password checks that
cost the same for known and unknown addresses; and the short-lived, signed challenge that carries
a sign-in from the password step to the two-factor step."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from siemgate.auth.passwords import verify_password
from siemgate.auth.tokens import token_digest
from siemgate.errors import Forbidden, NotFound, Unauthorized
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import Session, SignInProof, Store, User

COOKIE = "siemgate_session"  # over plain http (the demo on loopback): browsers refuse __Host- without Secure
HOST_COOKIE = f"__Host-{COOKIE}"  # over https: Secure, Path=/, no Domain, so no sibling host can set it
IDLE_NS = 30 * 60 * NS_PER_SECOND  # the default of the console_idle_minutes setting
LIFETIME_NS = 12 * 3600 * NS_PER_SECOND  # the default of the console_session_hours setting
TOUCH_NS = 60 * NS_PER_SECOND  # a session's last use is written at most this often
MAX_SESSIONS = 100  # a person's sessions kept; signing in again signs the oldest out
CHALLENGE_NS = 5 * 60 * NS_PER_SECOND
_CHALLENGE_KEY = "signin-challenge-key"
BAD_CREDENTIALS = "Unauthorized: the email or password is not right"


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User
    session: Session
    cookie: str


@dataclass(frozen=True, slots=True)
class CookieSpec:
    """How the session cookie is named and set for one request (docs/security.md, "Console sessions")."""

    name: str
    secure: bool


class SessionService:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], int],
        *,
        lifetime_ns: int = LIFETIME_NS,
        idle_ns: int = IDLE_NS,
        public_https: bool = False,
    ) -> None:
        """`lifetime_ns`: a session ends that long after sign-in, however busy. `idle_ns`: a
        session ends when not used that long (measured from its last recorded use, which is
        written at most once a minute). `public_https`:
        people reach the server over https (the public address says so), even when the request
        reaching this process is plain http from a TLS-terminating proxy."""
        self.store = store
        self.clock = clock
        self.lifetime_ns = lifetime_ns
        self.idle_ns = idle_ns
        self.public_https = public_https
        self._challenge_key = store.secret(_CHALLENGE_KEY, secrets.token_bytes(32), clock())

    def cookie(self, scheme: str) -> CookieSpec:
        """The session cookie for a request of this scheme (uvicorn's, which is X-Forwarded-Proto
        from trusted proxies): `__Host-` prefixed and Secure when the browser is on https (the
        request is, or the public address is), else the plain name without Secure. Only that one
        name is read: over https a cookie of the plain name, which any sibling subdomain can plant,
        is never a session."""
        https = scheme == "https" or self.public_https
        return CookieSpec(HOST_COOKIE, True) if https else CookieSpec(COOKIE, False)

    def presented(self, scheme: str, cookies: Mapping[str, str]) -> str | None:
        """The session cookie a request of this scheme carries (only the name `cookie` gives)."""
        return cookies.get(self.cookie(scheme).name) or None

    def _expiry(self, created_at: int, now: int) -> int:
        """When a session made at `created_at` and last used `now` ends: idle for `idle_ns`, or
        its lifetime after sign-in, whichever comes first."""
        return min(now + self.idle_ns, created_at + self.lifetime_ns)

    def person(self, email: str) -> User | None:
        """The person who signs in with this email (any case), or None. People sign in with their
        email only: their uuid finds no one, so it is not a second name to guess under."""
        try:
            user = self.store.get_user(email.strip())
        except NotFound:
            return None
        return None if user.uuid == email.strip() else user

    def check_password(self, person: User | None, password: str) -> User | None:
        """The person when the password is theirs, else None. Exactly one password-hash
        verification whether or not there is a person (docs/security.md, "Sign-in")."""
        ok = verify_password(person.password_hash if person else None, password)
        return person if ok and person is not None else None

    def open(self, user: User, ip: str, user_agent: str, *, second_factor: bool = False) -> SignIn:
        """A new session for a person who has passed every sign-in step (`user` as read when the
        password was checked; `second_factor`: whether one was passed); the person's oldest
        sessions but MAX_SESSIONS - 1 are signed out. Unauthorized, recording nothing, when the
        person's password or two-factor sign-in changed meanwhile: a session opened with the old
        ones would outlive the change that ended the others."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(
            id=new_id(),
            user_id=user.id,
            token_sha256=token_digest(cookie),
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=self._expiry(now, now),
            last_seen_at=now,
            ip=ip,
            user_agent=user_agent[:300],
        )
        proof = SignInProof(user.password_hash, second_factor)
        if not self.store.create_session(session, keep=MAX_SESSIONS, proof=proof):
            raise Unauthorized(
                "Unauthorized: your password or two-factor sign-in changed while you were signing in; sign in again"
            )
        return SignIn(user, session, cookie)

    # the two-factor step ------------------------------------------------------------------------
    def challenge(self, user: User) -> str:
        """A signed, 5-minute proof that `user` gave the right password:
        `uuid.issued.nonce.password-tag.mac`. The tag (keyed, so it reveals nothing of the hash)
        ties it to the password it was made with: a change or reset of the password voids it."""
        body = f"{user.uuid}.{self.clock()}.{secrets.token_urlsafe(9)}.{self._password_tag(user)}"
        return f"{body}.{self._mac(body)}"

    def redeem(self, challenge: str) -> User:
        """The person a challenge was made for; Unauthorized when it is forged, over 5 minutes
        old, or made with a password the person no longer has."""
        body, _, mac = challenge.rpartition(".")
        parts = body.split(".")
        if len(parts) != 4 or not _same(mac, self._mac(body)) or not parts[1].isdigit():
            raise Unauthorized("Unauthorized: this sign-in step is not valid; sign in again with your password")
        if self.clock() - int(parts[1]) > CHALLENGE_NS:
            raise Unauthorized("Unauthorized: the sign-in took more than 5 minutes; sign in again with your password")
        try:
            user = self.store.get_user(parts[0])
        except NotFound:
            raise Unauthorized("Unauthorized: sign in again with your password") from None
        if not _same(parts[3], self._password_tag(user)):
            raise Unauthorized("Unauthorized: the password changed since this sign-in began; sign in again")
        return user

    def _password_tag(self, user: User) -> str:
        return self._mac(f"password.{user.password_hash or ''}")[:22]

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._challenge_key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # sessions -----------------------------------------------------------------------------------
    def authenticate(self, cookie: str) -> tuple[User, Session]:
        """The person behind a session cookie; each use extends the session by the idle limit,
        never past its lifetime. Both limits are those in force now, not at sign-in: lowering a
        setting ends older sessions at once. Raises Unauthorized."""
        try:
            session = self.store.get_session_by_hash(token_digest(cookie))
        except NotFound:
            raise Unauthorized("Unauthorized: sign in again (the session is not known)") from None
        now = self.clock()
        if now >= min(session.expires_at, self._expiry(session.created_at, session.last_seen_at)):
            self.store.delete_session(session.id)
            raise Unauthorized("Unauthorized: the session has expired; sign in again")
        if now - session.last_seen_at > TOUCH_NS:
            self.store.touch_session(session.id, now, self._expiry(session.created_at, now))
        return self.store.get_user_by_id(session.user_id), session

    def renew(self, session_id: str) -> str:
        """A new cookie value for the session (returned, to be set): every copy of the old one stops
        working, whoever holds it. For changes that end the person's other sessions, since a copy
        of this browser's cookie is exactly what a thief would hold."""
        cookie = secrets.token_urlsafe(32)
        self.store.renew_session(session_id, token_digest(cookie))
        return cookie

    @staticmethod
    def check_csrf(session: Session, presented: str | None) -> None:
        """Raise Forbidden unless `presented` matches the session CSRF token."""
        if not presented or not _same(presented, session.csrf_token):
            raise Forbidden("Forbidden: missing or wrong CSRF token; reload the page and try again")

    def sign_out(self, session: Session) -> None:
        self.store.delete_session(session.id)

    def replace(self, cookie: str | None, signed_in: SignIn) -> bool:
        """End the session of `cookie` (what the browser presented when signing in again) if it is
        the same person's and not the new one: the old cookie value, and any copy of it, stops
        working. Another person's session is never touched (a shared browser: theirs ends only
        when they sign out). Returns whether a session ended."""
        if not cookie:
            return False
        try:
            old = self.store.get_session_by_hash(token_digest(cookie))
        except NotFound:
            return False
        if old.user_id != signed_in.user.id or old.id == signed_in.session.id:
            return False
        self.store.delete_session(old.id)
        return True


def _same(presented: str, expected: str) -> bool:
    """Whether a presented secret is the expected one, in constant time; text outside ASCII (which
    hmac.compare_digest refuses with a TypeError for str) is simply not it."""
    return hmac.compare_digest(presented.encode(), expected.encode())
