"""PostgresStore, part 1: accounts, people and memberships, personal API keys, console sessions
and integrations (the contract is in store/base.py)."""

from __future__ import annotations

from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.store.base import Account, ApiKey, Integration, Member, Session, User
from siemgate.store.errors import IntegrityConflict
from siemgate.store.postgres.connection import PgBase

_ACCOUNT = "id, uuid, name, created_at"
_USER = "id, uuid, email, name, password_hash, home_account_id, created_at"
_MEMBER = (
    "SELECT u.id, u.uuid, u.email, u.name, u.password_hash, u.home_account_id, u.created_at,"
    " m.account_id, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id"
)
_API_KEY = "id, user_id, name, key_sha256, prefix, created_at, expires_at, revoked_at, last_used_at"
_SESSION = "id, user_id, token_sha256, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent"
_INTEGRATION = "id, uuid, account_id, type, name, description, created_at, deleted_at"


def _member(row: tuple[Any, ...]) -> Member:
    return Member(User(*row[:7]), account_id=row[7], role=row[8], joined_at=row[9])


class PgPeople(PgBase):
    # accounts -----------------------------------------------------------------------------------
    def create_account(self, uuid: str, name: str, now: int) -> Account:
        with self._unique(f"an account named {name!r} already exists; choose another name"), self._write() as conn:
            row = conn.execute(
                "INSERT INTO accounts (uuid, name, created_at) VALUES (%s, %s, %s) RETURNING id", (uuid, name, now)
            ).fetchone()
        assert row is not None
        return Account(row[0], uuid, name, now)

    def get_account(self, uuid_or_name: str) -> Account:
        return Account(
            *self._one(
                f"SELECT {_ACCOUNT} FROM accounts WHERE uuid = %s OR lower(name) = lower(%s)"
                " ORDER BY uuid = %s DESC LIMIT 1",
                (uuid_or_name, uuid_or_name, uuid_or_name),
                f"account {uuid_or_name!r}",
            )
        )

    def get_account_by_id(self, account_id: int) -> Account:
        return Account(
            *self._one(f"SELECT {_ACCOUNT} FROM accounts WHERE id = %s", (account_id,), f"account #{account_id}")
        )

    def list_accounts(self) -> list[Account]:
        return [Account(*r) for r in self._rows(f"SELECT {_ACCOUNT} FROM accounts ORDER BY id")]

    def rename_account(self, account_id: int, name: str) -> Account:
        with self._unique(f"an account named {name!r} already exists; choose another name"), self._write() as conn:
            cur = conn.execute("UPDATE accounts SET name = %s WHERE id = %s", (name, account_id))
        if cur.rowcount == 0:
            raise NotFound(f"account #{account_id} not found")
        return self.get_account_by_id(account_id)

    # people -------------------------------------------------------------------------------------
    def create_user(
        self, uuid: str, email: str, name: str, password_hash: str | None, home_account_id: int | None, now: int
    ) -> User:
        try:
            with self._write() as conn:
                row = conn.execute(
                    "INSERT INTO users (uuid, email, name, password_hash, home_account_id, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (uuid, email, name, password_hash, home_account_id, now),
                ).fetchone()
        except IntegrityConflict as exc:
            if exc.constraint == "users_email":
                raise Conflict(f"a person with the email {email!r} already exists") from None
            raise Conflict(f"cannot create the person {email!r}: {exc.message}") from None
        assert row is not None
        return User(row[0], uuid, email, name, password_hash, home_account_id, now)

    def get_user(self, uuid_or_email: str) -> User:
        return User(
            *self._one(
                f"SELECT {_USER} FROM users WHERE uuid = %s OR lower(email) = lower(%s)"
                " ORDER BY uuid = %s DESC LIMIT 1",
                (uuid_or_email, uuid_or_email, uuid_or_email),
                f"person {uuid_or_email!r}",
            )
        )

    def get_user_by_id(self, user_id: int) -> User:
        return User(*self._one(f"SELECT {_USER} FROM users WHERE id = %s", (user_id,), f"person #{user_id}"))

    def set_password(self, user_id: int, password_hash: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))

    def add_member(self, account_id: int, user_id: int, role: str, now: int) -> Member:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (%s, %s, %s, %s)",
                    (account_id, user_id, role, now),
                )
        except IntegrityConflict as exc:
            if exc.kind == "unique":
                raise Conflict("this person is already a member of the account") from None
            raise Conflict(f"cannot add the member: {exc.message}") from None
        return self.get_member(account_id, user_id)

    def get_member(self, account_id: int, user_id: int) -> Member:
        return _member(
            self._one(f"{_MEMBER} WHERE m.account_id = %s AND m.user_id = %s", (account_id, user_id), "membership")
        )

    @staticmethod
    def _check_owner_left(conn: Any, account_id: int) -> None:
        owners = conn.execute(
            "SELECT count(*) FROM memberships WHERE account_id = %s AND role = 'owner'", (account_id,)
        ).fetchone()[0]
        if owners == 0:
            raise Conflict("the account must keep at least one owner; make someone else owner first")

    def set_role(self, account_id: int, user_id: int, role: str) -> Member:
        with self._unique(f"unknown role {role!r}"), self._write() as conn:
            # The account's memberships are locked so that two concurrent changes cannot both
            # remove the last owner.
            conn.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            cur = conn.execute(
                "UPDATE memberships SET role = %s WHERE account_id = %s AND user_id = %s", (role, account_id, user_id)
            )
            if cur.rowcount == 0:
                raise NotFound("this person is not a member of the account")
            self._check_owner_left(conn, account_id)
        return self.get_member(account_id, user_id)

    def remove_member(self, account_id: int, user_id: int) -> None:
        with self._write() as conn:
            conn.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            cur = conn.execute("DELETE FROM memberships WHERE account_id = %s AND user_id = %s", (account_id, user_id))
            if cur.rowcount == 0:
                raise NotFound("this person is not a member of the account")
            self._check_owner_left(conn, account_id)

    def list_members(self, account_id: int, after_user_id: int = 0, limit: int = 1000) -> list[Member]:
        rows = self._rows(
            f"{_MEMBER} WHERE m.account_id = %s AND m.user_id > %s ORDER BY m.user_id LIMIT %s",
            (account_id, after_user_id, limit),
        )
        return [_member(r) for r in rows]

    def list_memberships(self, user_id: int) -> list[Member]:
        return [_member(r) for r in self._rows(f"{_MEMBER} WHERE m.user_id = %s ORDER BY m.account_id", (user_id,))]

    # personal API keys and sessions ---------------------------------------------------------------
    def create_api_key(self, key: ApiKey) -> None:
        with self._unique(f"cannot record API key {key.id}: it already exists"), self._write() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, user_id, name, key_sha256, prefix, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key.id, key.user_id, key.name, key.key_sha256, key.prefix, key.created_at, key.expires_at),
            )

    def get_api_key_by_hash(self, key_sha256: str) -> ApiKey:
        return ApiKey(*self._one(f"SELECT {_API_KEY} FROM api_keys WHERE key_sha256 = %s", (key_sha256,), "API key"))

    def list_api_keys(self, user_id: int) -> list[ApiKey]:
        rows = self._rows(f"SELECT {_API_KEY} FROM api_keys WHERE user_id = %s ORDER BY created_at, id", (user_id,))
        return [ApiKey(*r) for r in rows]

    def revoke_api_key(self, user_id: int, key_id: str, now: int) -> ApiKey:
        with self._write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND user_id = %s AND revoked_at IS NULL",
                (now, key_id, user_id),
            )
        return ApiKey(
            *self._one(
                f"SELECT {_API_KEY} FROM api_keys WHERE id = %s AND user_id = %s",
                (key_id, user_id),
                f"API key {key_id!r}",
            )
        )

    def touch_api_keys(self, last_used: dict[str, int]) -> None:
        if not last_used:
            return
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE api_keys SET last_used_at = greatest(coalesce(last_used_at, 0), %s) WHERE id = %s",
                [(at, key_id) for key_id, at in sorted(last_used.items())],
            )

    def create_session(self, session: Session) -> None:
        with self._unique("cannot record the session: it already exists"), self._write() as conn:
            conn.execute(
                f"INSERT INTO sessions ({_SESSION}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    session.id,
                    session.user_id,
                    session.token_sha256,
                    session.csrf_token,
                    session.created_at,
                    session.expires_at,
                    session.last_seen_at,
                    session.ip,
                    session.user_agent,
                ),
            )

    def get_session_by_hash(self, token_sha256: str) -> Session:
        return Session(
            *self._one(f"SELECT {_SESSION} FROM sessions WHERE token_sha256 = %s", (token_sha256,), "session")
        )

    def touch_session(self, session_id: str, now: int, expires_at: int) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sessions SET last_seen_at = %s, expires_at = %s WHERE id = %s", (now, expires_at, session_id)
            )

    def delete_session(self, session_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE id = %s", (session_id,))

    def delete_sessions(self, user_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))

    # integrations -------------------------------------------------------------------------------
    def create_integration(
        self, account_id: int, uuid: str, type: str, name: str, description: str, now: int
    ) -> Integration:
        try:
            with self._write() as conn:
                row = conn.execute(
                    "INSERT INTO integrations (uuid, account_id, type, name, description, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (uuid, account_id, type, name, description, now),
                ).fetchone()
        except IntegrityConflict as exc:
            if exc.constraint == "integrations_live_name":
                raise Conflict(f"this account already has an integration named {name!r}") from None
            raise Conflict(f"cannot create integration {name!r}: {exc.message}") from None
        assert row is not None
        return Integration(row[0], uuid, account_id, type, name, description, now)

    def get_integration(self, account_id: int, uuid_or_name: str) -> Integration:
        return Integration(
            *self._one(
                f"SELECT {_INTEGRATION} FROM integrations WHERE account_id = %s"
                " AND (uuid = %s OR lower(name) = lower(%s)) AND deleted_at IS NULL ORDER BY uuid = %s DESC LIMIT 1",
                (account_id, uuid_or_name, uuid_or_name, uuid_or_name),
                f"integration {uuid_or_name!r}",
            )
        )

    def get_integration_by_id(self, integration_id: int) -> Integration:
        return Integration(
            *self._one(
                f"SELECT {_INTEGRATION} FROM integrations WHERE id = %s",
                (integration_id,),
                f"integration #{integration_id}",
            )
        )

    def list_integrations(self, account_id: int) -> list[Integration]:
        rows = self._rows(
            f"SELECT {_INTEGRATION} FROM integrations WHERE account_id = %s AND deleted_at IS NULL ORDER BY id",
            (account_id,),
        )
        return [Integration(*r) for r in rows]

    def update_integration(self, integration_id: int, name: str, description: str) -> Integration:
        with self._unique(f"this account already has an integration named {name!r}"), self._write() as conn:
            cur = conn.execute(
                "UPDATE integrations SET name = %s, description = %s WHERE id = %s AND deleted_at IS NULL",
                (name, description, integration_id),
            )
        if cur.rowcount == 0:
            raise NotFound(f"integration #{integration_id} not found")
        return self.get_integration_by_id(integration_id)

    def delete_integration(self, integration_id: int, now: int) -> list[str]:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE integrations SET deleted_at = %s WHERE id = %s AND deleted_at IS NULL", (now, integration_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"integration #{integration_id} not found")
            rows = conn.execute(
                "UPDATE tokens SET revoked_at = %s WHERE integration_id = %s AND revoked_at IS NULL RETURNING id",
                (now, integration_id),
            ).fetchall()
        return sorted(r[0] for r in rows)
