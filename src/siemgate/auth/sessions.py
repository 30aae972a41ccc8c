"""Console sign-in sessions: a random cookie value (stored as SHA-256), a CSRF token, sliding expiry,
and a per-email/IP limit on failed sign-ins."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from siemgate.auth.passwords import verify_password
from siemgate.auth.tokens import token_digest
from siemgate.errors import Forbidden, NotFound, RateLimited, Unauthorized
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.store.base import Session, Store, User

COOKIE = "siemgate_session"
IDLE_NS = 12 * 3600 * NS_PER_SECOND
FAILURES_ALLOWED = 5  # per email
FAILURES_ALLOWED_PER_IP = 50  # per client address (many people may share one behind a proxy)
FAILURE_WINDOW_S = 15 * 60


@dataclass(frozen=True, slots=True)
class SignIn:
    user: User
    session: Session
    cookie: str


class FailedSignIns:
    """Remembers failed sign-ins per key (email, IP) in a sliding window, in memory."""

    def __init__(
        self, allowed: int = FAILURES_ALLOWED, window_s: float = FAILURE_WINDOW_S, per_ip: int = FAILURES_ALLOWED_PER_IP
    ) -> None:
        self.allowed = allowed
        self.per_ip = per_ip
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def check(self, *keys: str) -> None:
        """Raise RateLimited while any key has too many recent failures."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= (self.per_ip if key.startswith("ip:") else self.allowed):
                    wait = int(self.window_s - (now - times[0])) + 1
                    raise RateLimited(f"too many failed sign-ins; try again in {wait} seconds", wait)

    def record(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class SessionService:
    def __init__(self, store: Store, clock: Callable[[], int], failures: FailedSignIns | None = None) -> None:
        self.store = store
        self.clock = clock
        self.failures = failures or FailedSignIns()

    def sign_in(self, email: str, password: str, ip: str, user_agent: str) -> SignIn:
        """Check the password and open a session; raises Unauthorized or RateLimited (429)."""
        email_key, ip_key = f"email:{email.strip().lower()}", f"ip:{ip}"
        self.failures.check(email_key, ip_key)
        try:
            user: User | None = self.store.get_user(email.strip())
        except NotFound:
            user = None
        if user is None or not verify_password(user.password_hash, password):
            self.failures.record(email_key, ip_key)
            raise Unauthorized("Unauthorized: the email or password is not right")
        self.failures.clear(email_key)
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(
            id=new_id(),
            user_id=user.id,
            token_sha256=token_digest(cookie),
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + IDLE_NS,
            last_seen_at=now,
            ip=ip,
            user_agent=user_agent[:300],
        )
        self.store.create_session(session)
        return SignIn(user, session, cookie)

    def authenticate(self, cookie: str) -> tuple[User, Session]:
        """The person behind a session cookie; extends the session. Raises Unauthorized."""
        try:
            session = self.store.get_session_by_hash(token_digest(cookie))
        except NotFound:
            raise Unauthorized("Unauthorized: sign in again (the session is not known)") from None
        now = self.clock()
        if now >= session.expires_at:
            self.store.delete_session(session.id)
            raise Unauthorized("Unauthorized: the session has expired; sign in again")
        if now - session.last_seen_at > 60 * NS_PER_SECOND:
            self.store.touch_session(session.id, now, now + IDLE_NS)
        return self.store.get_user_by_id(session.user_id), session

    @staticmethod
    def check_csrf(session: Session, presented: str | None) -> None:
        """Raise Forbidden unless `presented` matches the session CSRF token."""
        if not presented or not hmac.compare_digest(presented, session.csrf_token):
            raise Forbidden("Forbidden: missing or wrong CSRF token; reload the page and try again")

    def sign_out(self, session: Session) -> None:
        self.store.delete_session(session.id)
