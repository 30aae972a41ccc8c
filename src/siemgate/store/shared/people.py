"""Accounts, people and their memberships, personal API keys, console sessions and integrations,
written once for both backends (each method's docstring is its contract; the dialect is in dialect.py).

Ids of accounts, people and integrations are given by the database; uuids are random, so a unique
violation on creating one of them is its name (or email) being taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.store.errors import LIVE, IntegrityConflict
from siemgate.store.records import Account, ApiKey, Integration, MadeWith, Member, Session, SignInProof, User
from siemgate.store.shared.dialect import Bound, Ended, SharedSQL
from siemgate.store.shared.identity import (
    CredentialsEnded,
    Invitation,
    Withdrawal,
    accept_invitation,
    end_credentials,
    revoke_addressed,
    withdraw_invitations,
)

_ACCOUNT = "id, uuid, name, created_at"
_USER = "id, uuid, email, name, password_hash, home_account_id, created_at"
_MEMBER = (
    "SELECT u.id, u.uuid, u.email, u.name, u.password_hash, u.home_account_id, u.created_at,"
    " m.account_id, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id"
)
_API_KEY = "id, user_id, name, key_sha256, prefix, created_at, expires_at, revoked_at, last_used_at"
_SESSION = "id, user_id, token_sha256, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent"
_INTEGRATION = "id, uuid, account_id, type, name, description, created_at, deleted_at"
_NEW_USER = (
    "INSERT INTO users (uuid, email, name, password_hash, home_account_id, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_NEW_INTEGRATION = (
    "INSERT INTO integrations (uuid, account_id, type, name, description, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_LAST_OWNER = "the account must keep at least one owner; make someone else owner first"


def _taken(email: str) -> tuple[str, str]:
    """A new person's refusals: for a taken email, and the start of any other."""
    return f"a person with the email {email!r} already exists", f"cannot create the person {email!r}"


class _NotPending(Exception):
    """Rolls back a transaction whose invitation was no longer pending."""


def _member(row: Any) -> Member:
    return Member(User(*row[:7]), account_id=row[7], role=row[8], joined_at=row[9])


class AccountStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    def _insert_named(
        self,
        sql: str,
        params: Sequence[Any],
        taken: str,
        what: str,
        bound: Bound | None = None,
        ended: Ended | None = None,
    ) -> int:
        """Insert a row keyed by id (its uuid is random, so a unique key that is taken is its name)
        within `bound`, forgetting what `ended` says of the table (SharedSQL._forget); the new id.
        Conflict(taken) for a taken name, Conflict("what: why") for another violation,
        LimitReached for a passed bound."""
        try:
            with self._tx() as conn:
                self._within(conn, bound)
                new_id = self.dialect.insert_id(conn, sql, params)
                if ended is not None:
                    self._forget(conn, sql.split()[2], ended)
                return new_id
        except IntegrityConflict as exc:
            raise Conflict(taken if exc.kind == "unique" else f"{what}: {exc.message}") from None

    # accounts -----------------------------------------------------------------------------------
    def create_account(self, uuid: str, name: str, now: int) -> Account:
        """Raises Conflict when the name is taken."""
        taken = f"an account named {name!r} already exists; choose another name"
        sql = "INSERT INTO accounts (uuid, name, created_at) VALUES (?, ?, ?)"
        account_id = self._insert_named(sql, (uuid, name, now), taken, taken)
        return Account(account_id, uuid, name, now)

    def get_account(self, uuid_or_name: str) -> Account:
        """By uuid, else by name (case-insensitive); raises NotFound (also for an account being
        deleted, as get_account_by_id and list_accounts pass it over: store/shared/deletion.py)."""
        where = f"{LIVE} AND (uuid = ? OR {self.dialect.same_text('name')})"
        sql = f"SELECT {_ACCOUNT} FROM accounts WHERE {where} ORDER BY uuid = ? DESC LIMIT 1"
        return Account(*self._first(sql, (uuid_or_name,) * 3, f"account {uuid_or_name!r}"))

    def get_account_by_id(self, account_id: int) -> Account:
        """Raises NotFound."""
        return Account(
            *self._first(
                f"SELECT {_ACCOUNT} FROM accounts WHERE id = ? AND {LIVE}",
                (account_id,),
                f"account #{account_id}",
            )
        )

    def check_readable(self) -> None:
        """Return once the store answers a read of the accounts table, reading one row at most
        whatever the number of accounts (/healthz, which anyone may ask); raises the backend's
        error otherwise."""
        self._select("SELECT id FROM accounts LIMIT 1")

    def list_accounts(self) -> list[Account]:
        return [Account(*r) for r in self._select(f"SELECT {_ACCOUNT} FROM accounts WHERE {LIVE} ORDER BY id")]

    def rename_account(self, account_id: int, name: str) -> Account:
        """Raises Conflict when the name is taken, NotFound for an unknown account."""
        with self._unique(f"an account named {name!r} already exists; choose another name"), self._tx() as conn:
            cur = conn.execute(self._q("UPDATE accounts SET name = ? WHERE id = ?"), (name, account_id))
        if cur.rowcount == 0:
            raise NotFound(f"account #{account_id} not found")
        return self.get_account_by_id(account_id)

    # people -------------------------------------------------------------------------------------
    def create_user(
        self, uuid: str, email: str, name: str, password_hash: str | None, home_account_id: int | None, now: int
    ) -> User:
        """Raises Conflict when the email is taken."""
        params = (uuid, email, name, password_hash, home_account_id, now)
        return User(self._insert_named(_NEW_USER, params, *_taken(email)), *params)

    def create_invited_user(
        self, invitation: Invitation, uuid: str, email: str, name: str, password_hash: str, now: int
    ) -> User | None:
        """Create the person an invitation is addressed to (home: its account) and accept it for
        them, in one transaction: None, creating nothing, when it is no longer pending (revoked,
        accepted or expired since it was read). Raises Conflict when the email is taken."""
        params = (uuid, email, name, password_hash, invitation.account_id, now)
        try:
            with self._tx() as conn:
                user_id = self.dialect.insert_id(conn, _NEW_USER, params)
                if not accept_invitation(self, conn, invitation.id, user_id, now):
                    raise _NotPending
        except _NotPending:
            return None
        except IntegrityConflict as exc:
            taken, what = _taken(email)
            raise Conflict(taken if exc.kind == "unique" else f"{what}: {exc.message}") from None
        return User(user_id, *params)

    def get_user(self, uuid_or_email: str) -> User:
        """By uuid, else by email (case-insensitive); raises NotFound."""
        where = f"uuid = ? OR {self.dialect.same_text('email')}"
        sql = f"SELECT {_USER} FROM users WHERE {where} ORDER BY uuid = ? DESC LIMIT 1"
        return User(*self._first(sql, (uuid_or_email,) * 3, f"person {uuid_or_email!r}"))

    def get_user_by_id(self, user_id: int) -> User:
        """Raises NotFound."""
        return User(*self._first(f"SELECT {_USER} FROM users WHERE id = ?", (user_id,), f"person #{user_id}"))

    def set_password(
        self, user_id: int, password_hash: str, *, keep: str | None = None, revoke_keys_at: int | None = None
    ) -> CredentialsEnded:
        """Set the person's password and, in the same transaction, end their console sessions (all
        but `keep`) and, with `revoke_keys_at`, revoke their API keys (`end_credentials`): no crash
        leaves a new password beside a session or key that the old one opened."""
        with self._tx() as conn:
            conn.execute(self._q("UPDATE users SET password_hash = ? WHERE id = ?"), (password_hash, user_id))
            return end_credentials(self, conn, user_id, keep=keep, revoke_keys_at=revoke_keys_at)

    # memberships --------------------------------------------------------------------------------
    def add_member(self, account_id: int, user_id: int, role: str, now: int) -> Member:
        """Raises Conflict when the person is already a member."""
        try:
            with self._tx() as conn:
                conn.execute(
                    self._q("INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (?, ?, ?, ?)"),
                    (account_id, user_id, role, now),
                )
        except IntegrityConflict as exc:
            if exc.kind == "unique":
                raise Conflict("this person is already a member of the account") from None
            raise Conflict(f"cannot add the member: {exc.message}") from None
        return self.get_member(account_id, user_id)

    def get_member(self, account_id: int, user_id: int) -> Member:
        """Raises NotFound when the person is not a member of the account."""
        return _member(
            self._first(f"{_MEMBER} WHERE m.account_id = ? AND m.user_id = ?", (account_id, user_id), "membership")
        )

    def _change_membership(
        self,
        sql: str,
        params: tuple[Any, ...],
        account_id: int,
        user_id: int,
        withdrawal: Withdrawal,
        removed: list[CredentialsEnded] | None = None,
    ) -> list[Invitation]:
        """Run `sql` on one membership and revoke the invitations `withdrawal` names, then check
        that the account still has an owner; returns the invitations revoked. The account's row is
        locked first (where rows are locked), so two concurrent changes cannot both remove the last
        owner. With `removed` (a removal), the pending invitations to the account addressed to the
        person are revoked too, and a person left in no account has their sessions ended and API
        keys revoked, in the same transaction; what ended is appended to `removed`."""
        with self._tx() as conn:
            self._lock(conn, "accounts", account_id)
            if conn.execute(self._q(sql), params).rowcount == 0:
                raise NotFound("this person is not a member of the account")
            withdrawn = withdraw_invitations(self, conn, account_id, user_id, withdrawal)
            if removed is not None:
                withdrawn += revoke_addressed(self, conn, account_id, user_id, withdrawal)
            owners = conn.execute(
                self._q("SELECT count(*) FROM memberships WHERE account_id = ? AND role = 'owner'"), (account_id,)
            ).fetchone()[0]
            if owners == 0:
                raise Conflict(_LAST_OWNER)
            if (
                removed is not None
                and not conn.execute(
                    self._q("SELECT 1 FROM memberships WHERE user_id = ? LIMIT 1"), (user_id,)
                ).fetchone()
            ):
                removed.append(end_credentials(self, conn, user_id, revoke_keys_at=withdrawal.now))
        return withdrawn

    def set_role(
        self, account_id: int, user_id: int, role: str, withdrawal: Withdrawal
    ) -> tuple[Member, list[Invitation]]:
        """Change a role atomically with the withdrawal of the person's invitations it names;
        returns the member and the invitations revoked. Conflict if the account would be left
        without an owner (nothing changes)."""
        with self._unique(f"unknown role {role!r}"):
            withdrawn = self._change_membership(
                "UPDATE memberships SET role = ? WHERE account_id = ? AND user_id = ?",
                (role, account_id, user_id),
                account_id,
                user_id,
                withdrawal,
            )
        return self.get_member(account_id, user_id), withdrawn

    def remove_member(
        self, account_id: int, user_id: int, withdrawal: Withdrawal
    ) -> tuple[list[Invitation], CredentialsEnded | None]:
        """Remove a membership atomically with the withdrawal of the person's invitations it
        names, the revocation of the pending invitations to the account addressed to them and,
        when it was the person's last account, with the end of their console sessions
        and the revocation of their API keys (at `withdrawal.now`); returns the invitations revoked
        and what ended (None: the person is still in another account). Conflict if the account
        would be left without an owner, NotFound if not a member (nothing changes)."""
        removed: list[CredentialsEnded] = []
        withdrawn = self._change_membership(
            "DELETE FROM memberships WHERE account_id = ? AND user_id = ?",
            (account_id, user_id),
            account_id,
            user_id,
            withdrawal,
            removed,
        )
        return withdrawn, (removed[0] if removed else None)

    def list_members(self, account_id: int, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        """Members ordered by user id, after `after_user_id`."""
        rows = self._select(
            f"{_MEMBER} WHERE m.account_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?",
            (account_id, after_user_id, limit),
        )
        return [_member(r) for r in rows]

    def list_memberships(self, user_id: int) -> list[Member]:
        """Every account the person belongs to."""
        return [_member(r) for r in self._select(f"{_MEMBER} WHERE m.user_id = ? ORDER BY m.account_id", (user_id,))]

    # personal API keys and console sessions --------------------------------------------------------
    def create_api_key(self, key: ApiKey, *, limit: int | None = None, made_with: MadeWith | None = None) -> bool:
        """Raises Conflict when the id or hash is taken; with `limit`, LimitReached (nothing
        written) when the person already holds `limit` live keys (neither revoked nor expired).
        With `made_with`, False (nothing written) when that credential of the person's has ended
        (session deleted, key revoked): checked under a lock on the person's row, which
        `end_credentials` takes first, so a key is never recorded after a change that ended the
        credential making it (a removal, a password change or reset) and left live."""
        counted = (
            "SELECT count(*) FROM api_keys WHERE user_id = ? AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?)"
        )
        refusal = (
            "this person holds {held} live API keys, the most allowed is {limit};"
            " revoke keys no script uses any more to create another"
        )
        bound = Bound("users", key.user_id, counted, (key.user_id, key.created_at), limit, refusal)
        into = "api_keys (id, user_id, name, key_sha256, prefix, created_at, expires_at)"
        values = (key.id, key.user_id, key.name, key.key_sha256, key.prefix, key.created_at, key.expires_at)
        ended = Ended("user_id = ? AND (revoked_at IS NOT NULL OR expires_at <= ?)", (key.user_id, key.created_at))
        with self._change(f"cannot record API key {key.id}") as conn:
            self._within(conn, bound)
            if made_with is not None and not self._live(conn, key.user_id, made_with):
                return False
            conn.execute(self._q(f"INSERT INTO {into} VALUES ({self._marks(len(values))})"), values)
            self._forget(conn, "api_keys", ended)
        return True

    def _live(self, conn: Any, user_id: int, credential: MadeWith) -> bool:
        """Whether the person's session or API key `credential` still works (not deleted, not
        revoked), after locking the person's row (see create_api_key)."""
        self._lock(conn, "users", user_id)
        if credential.kind == "session":
            sql = "SELECT 1 FROM sessions WHERE id = ? AND user_id = ?"
        else:
            sql = "SELECT 1 FROM api_keys WHERE id = ? AND user_id = ? AND revoked_at IS NULL"
        return conn.execute(self._q(sql), (credential.id, user_id)).fetchone() is not None

    def get_api_key_by_hash(self, key_sha256: str) -> ApiKey:
        """Raises NotFound."""
        return ApiKey(*self._first(f"SELECT {_API_KEY} FROM api_keys WHERE key_sha256 = ?", (key_sha256,), "API key"))

    def list_api_keys(self, user_id: int) -> list[ApiKey]:
        rows = self._select(f"SELECT {_API_KEY} FROM api_keys WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return [ApiKey(*r) for r in rows]

    def revoke_api_key(self, user_id: int, key_id: str, now: int) -> ApiKey:
        """Raises NotFound (also for another person's key)."""
        with self._tx() as conn:
            conn.execute(
                self._q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL"),
                (now, key_id, user_id),
            )
        sql = f"SELECT {_API_KEY} FROM api_keys WHERE id = ? AND user_id = ?"
        return ApiKey(*self._first(sql, (key_id, user_id), f"API key {key_id!r}"))

    def touch_api_keys(self, last_used: dict[str, int]) -> None:
        self._touch("api_keys", last_used)

    def create_session(self, session: Session, *, keep: int | None = None, proof: SignInProof | None = None) -> bool:
        """Record a session; with `keep`, the person's sessions but the newest `keep` (this one
        among them) are deleted, signed out, in the same transaction. With `proof`, only while it
        still holds (`_still_proven`): False, writing nothing, when the person's password or
        two-factor sign-in changed since the sign-in checked them."""
        values = (session.id, session.user_id, session.token_sha256, session.csrf_token, session.created_at,
                  session.expires_at, session.last_seen_at, session.ip, session.user_agent)  # fmt: skip
        with self._change("cannot record the session") as conn:
            if proof is not None and not self._still_proven(conn, session.user_id, proof):
                return False
            conn.execute(self._q(f"INSERT INTO sessions ({_SESSION}) VALUES ({self._marks(len(values))})"), values)
            if keep is not None:
                self._forget(conn, "sessions", Ended("user_id = ?", (session.user_id,), keep=keep))
        return True

    def _still_proven(self, conn: Any, user_id: int, proof: SignInProof) -> bool:
        """Whether the person's password hash is still the one a sign-in verified, and two-factor
        is on exactly when it passed a second factor. The person's row is locked first, as
        `end_credentials` locks it: a change of password or two-factor that ends sessions either
        commits first (and this sees it) or waits for this session (and ends it)."""
        self._lock(conn, "users", user_id)
        row = conn.execute(self._q("SELECT password_hash FROM users WHERE id = ?"), (user_id,)).fetchone()
        on = conn.execute(
            self._q("SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL"), (user_id,)
        ).fetchone()
        return row is not None and row[0] == proof.password_hash and (on is not None) == proof.second_factor

    def get_session_by_hash(self, token_sha256: str) -> Session:
        """Raises NotFound."""
        return Session(
            *self._first(f"SELECT {_SESSION} FROM sessions WHERE token_sha256 = ?", (token_sha256,), "session")
        )

    def touch_session(self, session_id: str, now: int, expires_at: int) -> None:
        with self._tx() as conn:
            conn.execute(
                self._q("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?"),
                (now, expires_at, session_id),
            )

    def renew_session(self, session_id: str, token_sha256: str) -> None:
        """Give the session a new cookie (its SHA-256): the old value stops working."""
        with self._tx() as conn:
            conn.execute(self._q("UPDATE sessions SET token_sha256 = ? WHERE id = ?"), (token_sha256, session_id))

    def delete_session(self, session_id: str) -> None:
        with self._tx() as conn:
            conn.execute(self._q("DELETE FROM sessions WHERE id = ?"), (session_id,))

    # integrations -------------------------------------------------------------------------------
    def create_integration(
        self, account_id: int, uuid: str, type: str, name: str, description: str, now: int, *, limit: int | None = None
    ) -> Integration:
        """Raises Conflict when the account already has an integration with that name; with
        `limit`, LimitReached (nothing written) when it already has `limit` (not deleted). The
        account's deleted integrations but the newest KEEP_ENDED are forgotten, with their tokens
        (revoked when the integration was deleted) and those tokens' usage."""
        values = (uuid, account_id, type, name, description, now)
        taken = f"this account already has an integration named {name!r}"
        counted = "SELECT count(*) FROM integrations WHERE account_id = ? AND deleted_at IS NULL"
        refusal = (
            "the account has {held} integrations, the most allowed is {limit};"
            " delete one no SIEM uses any more to create another"
        )
        bound = Bound("accounts", account_id, counted, (account_id,), limit, refusal)
        what = f"cannot create integration {name!r}"
        of = "SELECT id FROM tokens WHERE integration_id IN ({ids})"
        ended = Ended(
            "account_id = ? AND deleted_at IS NOT NULL",
            (account_id,),
            (
                f"UPDATE tokens SET replaces = NULL WHERE replaces IN ({of})",
                f"DELETE FROM token_usage WHERE token_id IN ({of})",
                "DELETE FROM tokens WHERE integration_id IN ({ids})",
            ),
        )
        integration_id = self._insert_named(_NEW_INTEGRATION, values, taken, what, bound, ended)
        return Integration(integration_id, uuid, account_id, type, name, description, now)

    def get_integration(self, account_id: int, uuid_or_name: str) -> Integration:
        """Raises NotFound."""
        sql = (
            f"SELECT {_INTEGRATION} FROM integrations WHERE account_id = ?"
            f" AND (uuid = ? OR {self.dialect.same_text('name')}) AND deleted_at IS NULL ORDER BY uuid = ? DESC LIMIT 1"
        )
        return Integration(*self._first(sql, (account_id, *(uuid_or_name,) * 3), f"integration {uuid_or_name!r}"))

    def get_integration_by_id(self, integration_id: int) -> Integration:
        """Raises NotFound."""
        sql = f"SELECT {_INTEGRATION} FROM integrations WHERE id = ?"
        return Integration(*self._first(sql, (integration_id,), f"integration #{integration_id}"))

    def list_integrations(self, account_id: int) -> list[Integration]:
        """The account's live (not deleted) integrations."""
        rows = self._select(
            f"SELECT {_INTEGRATION} FROM integrations WHERE account_id = ? AND deleted_at IS NULL ORDER BY id",
            (account_id,),
        )
        return [Integration(*r) for r in rows]

    def update_integration(self, integration_id: int, name: str, description: str) -> Integration:
        """Raises Conflict when another live integration of the account has the name."""
        with self._unique(f"this account already has an integration named {name!r}"), self._tx() as conn:
            cur = conn.execute(
                self._q("UPDATE integrations SET name = ?, description = ? WHERE id = ? AND deleted_at IS NULL"),
                (name, description, integration_id),
            )
        if cur.rowcount == 0:
            raise NotFound(f"integration #{integration_id} not found")
        return self.get_integration_by_id(integration_id)

    def delete_integration(self, integration_id: int, now: int) -> list[str]:
        """Mark deleted and revoke its live tokens in one transaction; returns the revoked token ids."""
        with self._tx() as conn:
            cur = conn.execute(
                self._q("UPDATE integrations SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL"),
                (now, integration_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"integration #{integration_id} not found")
            live = self._q(
                f"SELECT id FROM tokens WHERE integration_id = ? AND revoked_at IS NULL{self.dialect.for_update}"
            )
            revoked = sorted(str(r[0]) for r in conn.execute(live, (integration_id,)).fetchall())
            if revoked:
                conn.execute(
                    self._q(f"UPDATE tokens SET revoked_at = ? WHERE id IN ({self._marks(len(revoked))})"),
                    (now, *revoked),
                )
        return revoked
