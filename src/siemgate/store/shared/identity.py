"""The identity part of the store, written once for both backends: invitations, two-factor
(TOTP) enrolments and recovery codes, per-account sign-in policy, and revoking every credential of
a person at once.

`IdentityStore` runs on the primitives a backend supplies (store/shared/dialect.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.errors import Conflict, NotFound
from siemgate.model.text import fold_case
from siemgate.store.shared.dialect import Ended, SharedSQL

INVITATION_STATES = ("pending", "accepted", "declined", "revoked")


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation to join an account with a role. The code is stored as SHA-256 only."""

    id: str
    account_id: int
    email: str
    role: str
    code_sha256: str
    invited_by: int | None  # the inviting person; None for the operator (command line)
    created_at: int
    expires_at: int
    status: str = "pending"
    decided_at: int | None = None
    decided_by: int | None = None

    def state(self, now: int) -> str:
        """`pending`, `expired`, `accepted`, `declined` or `revoked`."""
        return "expired" if self.status == "pending" and now >= self.expires_at else self.status


@dataclass(frozen=True, slots=True)
class TwoFactor:
    """A person's TOTP enrolment: the secret (encrypted), when it was confirmed (None: enrolment
    started, not yet confirmed), and the last time step accepted (a code is used at most once)."""

    user_id: int
    secret: str
    created_at: int
    enabled_at: int | None = None
    last_step: int | None = None


@dataclass(frozen=True, slots=True)
class FactorUse:
    """A second factor presented to change two-factor itself (turn it off, new recovery codes):
    the TOTP time step its code matched, or the SHA-256 of a recovery code. Spent by the change's
    transaction: a step only if later than the last one used, a recovery code only if unused."""

    step: int | None = None
    recovery_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The pending invitations a change of a person's membership revokes with it: those the person
    sent offering one of `roles` (the roles they can no longer grant), revoked at `now` by `by`
    (None: the operator)."""

    roles: tuple[str, ...]
    now: int
    by: int | None


@dataclass(frozen=True, slots=True)
class CredentialsEnded:
    """What `end_credentials` ended: how many console sessions, and the ids of the API keys revoked."""

    sessions: int
    api_keys: list[str]


def end_credentials(
    sql: SharedSQL, conn: Any, user_id: int, *, keep: str | None = None, revoke_keys_at: int | None = None
) -> CredentialsEnded:
    """In the caller's transaction, delete the person's console sessions (all but `keep`) and, with
    `revoke_keys_at` (the time), revoke every live personal API key of theirs. The person's row is
    locked first, so a sign-in recording its session at the same time (AccountStore.create_session
    with a proof) is ordered with this: its session is deleted here, or it sees the change."""
    sql._lock(conn, "users", user_id)
    sessions = conn.execute(sql._q("DELETE FROM sessions WHERE user_id = ? AND id <> ?"), (user_id, keep or ""))
    ended = int(sessions.rowcount or 0)
    if revoke_keys_at is None:
        return CredentialsEnded(ended, [])
    rows = conn.execute(
        sql._q("SELECT id FROM api_keys WHERE user_id = ? AND revoked_at IS NULL"), (user_id,)
    ).fetchall()
    conn.execute(
        sql._q("UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"), (revoke_keys_at, user_id)
    )
    return CredentialsEnded(ended, sorted(r[0] for r in rows))


def use_factor(sql: SharedSQL, conn: Any, user_id: int, use: FactorUse, now: int) -> bool:
    """In the caller's transaction, spend the person's second factor `use`; False when it was
    already used (a TOTP step not later than the last one used: a replay; a used or unknown
    recovery code) or two-factor is not on."""
    if use.recovery_digest is not None:
        spent = conn.execute(
            sql._q("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_sha256 = ? AND used_at IS NULL"),
            (now, user_id, use.recovery_digest),
        )
        return bool(spent.rowcount)
    if use.step is None:
        return False
    spent = conn.execute(
        sql._q(
            "UPDATE two_factor SET last_step = ?"
            " WHERE user_id = ? AND (last_step IS NULL OR last_step < ?) AND enabled_at IS NOT NULL"
        ),
        (use.step, user_id, use.step),
    )
    return bool(spent.rowcount)


_INVITATION = (
    "id, account_id, email, role, code_sha256, invited_by, created_at, expires_at, status, decided_at, decided_by"
)
_TWO_FACTOR = "user_id, secret, created_at, enabled_at, last_step"


def withdraw_invitations(
    sql: SharedSQL, conn: Any, account_id: int, user_id: int, withdrawal: Withdrawal
) -> list[Invitation]:
    """Revoke, in the caller's transaction, the person's pending invitations to the account that
    `withdrawal` names; returns them as they were."""
    if not withdrawal.roles:
        return []
    sent = f"invited_by = ? AND role IN ({sql._marks(len(withdrawal.roles))})"
    return _revoke_pending(sql, conn, account_id, sent, (user_id, *withdrawal.roles), withdrawal)


def revoke_addressed(
    sql: SharedSQL, conn: Any, account_id: int, user_id: int, withdrawal: Withdrawal
) -> list[Invitation]:
    """Revoke, in the caller's transaction, the pending invitations to the account addressed to the
    person's email (any case), at `withdrawal.now` by `withdrawal.by`: someone removed does not
    come back with a code sent before; returns them as they were."""
    [email] = conn.execute(sql._q("SELECT email FROM users WHERE id = ?"), (user_id,)).fetchone()
    return _revoke_pending(sql, conn, account_id, sql.dialect.same_text("email"), (email,), withdrawal)


def _revoke_pending(
    sql: SharedSQL, conn: Any, account_id: int, where: str, params: tuple[Any, ...], withdrawal: Withdrawal
) -> list[Invitation]:
    """Revoke the account's pending, unexpired invitations that also match `where`; returns them
    as they were."""
    rows = conn.execute(
        sql._q(
            f"SELECT {_INVITATION} FROM invitations WHERE account_id = ? AND status = 'pending' AND expires_at > ?"
            f" AND {where} ORDER BY created_at, id"
            + sql.dialect.for_update  # an accept or revoke at the same moment waits, or is waited for
        ),
        (account_id, withdrawal.now, *params),
    ).fetchall()
    withdrawn = [Invitation(*r) for r in rows]
    if withdrawn:
        conn.execute(
            sql._q(
                "UPDATE invitations SET status = 'revoked', decided_at = ?, decided_by = ?"
                f" WHERE id IN ({sql._marks(len(withdrawn))}) AND status = 'pending'"
            ),
            (withdrawal.now, withdrawal.by, *(i.id for i in withdrawn)),
        )
    return withdrawn


def accept_invitation(sql: SharedSQL, conn: Any, invitation_id: str, user_id: int, now: int) -> bool:
    """In the caller's transaction, mark a pending, unexpired invitation accepted and add the
    membership it offers. False, writing nothing, when it was not pending any more; Conflict when
    the person is already a member."""
    row = conn.execute(
        sql._q("SELECT account_id, role FROM invitations WHERE id = ? AND status = 'pending' AND expires_at > ?"),
        (invitation_id, now),
    ).fetchone()
    if row is None:
        return False
    account_id, role = row[0], row[1]
    member = conn.execute(
        sql._q("SELECT 1 FROM memberships WHERE account_id = ? AND user_id = ?"), (account_id, user_id)
    ).fetchone()
    if member is not None:
        raise Conflict("you are already a member of this account")
    accepted = conn.execute(
        sql._q(
            "UPDATE invitations SET status = 'accepted', decided_at = ?, decided_by = ?"
            " WHERE id = ? AND status = 'pending'"
        ),
        (now, user_id, invitation_id),
    )
    if accepted.rowcount == 0:  # revoked since it was read (PostgreSQL re-reads the row)
        return False
    conn.execute(
        sql._q("INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (?, ?, ?, ?)"),
        (account_id, user_id, role, now),
    )
    return True


class IdentityStore(SharedSQL):
    """Mixin of SQLiteStore and PostgresStore (see the module docstring)."""

    def _run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run statements in one transaction; returns each one's row count."""
        with self._tx() as conn:
            return [conn.execute(self._q(sql), params).rowcount for sql, params in statements]

    # invitations --------------------------------------------------------------------------------
    def create_invitation(self, invitation: Invitation, *, max_pending: int, now: int) -> None:
        """Record a pending invitation; Conflict when the account already has `max_pending`
        unexpired pending invitations, or one for the same email. The account's row is locked
        first, so concurrent invitations cannot all pass the bound. The account's decided or
        expired invitations but the newest KEEP_ENDED are forgotten (SharedSQL._forget)."""
        with self._tx() as conn:
            self._lock(conn, "accounts", invitation.account_id)
            pending = conn.execute(
                self._q("SELECT email FROM invitations WHERE account_id = ? AND status = 'pending' AND expires_at > ?"),
                (invitation.account_id, now),
            ).fetchall()
            if any(fold_case(row[0]) == fold_case(invitation.email) for row in pending):
                raise Conflict(
                    f"{invitation.email} already has a pending invitation to this account; revoke it to invite again"
                )
            if len(pending) >= max_pending:
                raise Conflict(
                    f"the account has {len(pending)} pending invitations, the most allowed;"
                    " revoke some or wait until they are accepted or expire"
                )
            conn.execute(
                self._q(f"INSERT INTO invitations ({_INVITATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (
                    invitation.id,
                    invitation.account_id,
                    invitation.email,
                    invitation.role,
                    invitation.code_sha256,
                    invitation.invited_by,
                    invitation.created_at,
                    invitation.expires_at,
                    invitation.status,
                    invitation.decided_at,
                    invitation.decided_by,
                ),
            )
            ended = "account_id = ? AND (status <> 'pending' OR expires_at <= ?)"
            self._forget(conn, "invitations", Ended(ended, (invitation.account_id, now)))

    def get_invitation(self, invitation_id: str) -> Invitation:
        rows = self._select(f"SELECT {_INVITATION} FROM invitations WHERE id = ?", (invitation_id,))
        if not rows:
            raise NotFound(f"invitation {invitation_id!r} not found")
        return Invitation(*rows[0])

    def list_invitations(self, account_id: int) -> list[Invitation]:
        rows = self._select(
            f"SELECT {_INVITATION} FROM invitations WHERE account_id = ? ORDER BY created_at, id", (account_id,)
        )
        return [Invitation(*r) for r in rows]

    def invitations_for(self, email: str, now: int) -> list[Invitation]:
        """Pending, unexpired invitations addressed to `email` (case-insensitive)."""
        rows = self._select(
            f"SELECT {_INVITATION} FROM invitations WHERE {self.dialect.same_text('email')} AND status = 'pending'"
            " AND expires_at > ? ORDER BY created_at, id",
            (email, now),
        )
        return [Invitation(*r) for r in rows]

    def decide_invitation(self, invitation_id: str, status: str, user_id: int | None, now: int) -> bool:
        """Move a pending, unexpired invitation to `declined` or `revoked`; False when it was not
        pending any more (someone else decided first, or it expired)."""
        if status not in ("declined", "revoked"):
            raise ValueError(f"unknown decision {status!r}")
        [count] = self._run(
            [
                (
                    "UPDATE invitations SET status = ?, decided_at = ?, decided_by = ?"
                    " WHERE id = ? AND status = 'pending' AND expires_at > ?",
                    (status, now, user_id, invitation_id, now),
                )
            ]
        )
        return bool(count)

    def accept_invitation(self, invitation_id: str, user_id: int, now: int) -> bool:
        """Atomically mark a pending, unexpired invitation accepted and add the membership it
        offers. False when it was not pending any more; Conflict when the person is already a
        member (the invitation then stays pending)."""
        with self._tx() as conn:
            return accept_invitation(self, conn, invitation_id, user_id, now)

    # two-factor ---------------------------------------------------------------------------------
    def get_two_factor(self, user_id: int) -> TwoFactor | None:
        rows = self._select(f"SELECT {_TWO_FACTOR} FROM two_factor WHERE user_id = ?", (user_id,))
        return TwoFactor(*rows[0]) if rows else None

    def bind_two_factor_secrets(self, bind: Callable[[str, str], str | None], mark: str, now: int) -> int | None:
        """Once per store, in one transaction: each stored two-factor secret becomes `bind(sealed,
        the person's uuid)` (None leaves it), and the deployment secret `mark` records that this
        was done (its value: the time, as text). Returns how many changed; None, changing nothing,
        when `mark` exists. A secret changed meanwhile by another process (a new enrolment, or the
        same upgrade) is left as it is now."""
        if self._select("SELECT 1 FROM secrets WHERE name = ?", (mark,)):
            return None  # done before: read without taking the write lock (this runs at every start)
        with self._tx() as conn:
            if conn.execute(self._q("SELECT 1 FROM secrets WHERE name = ?"), (mark,)).fetchone() is not None:
                return None
            rows = conn.execute(
                self._q("SELECT t.user_id, t.secret, u.uuid FROM two_factor t JOIN users u ON u.id = t.user_id")
            ).fetchall()
            changed = 0
            for user_id, sealed, uuid in rows:
                bound = bind(sealed, uuid)
                if bound is not None:
                    changed += conn.execute(
                        self._q("UPDATE two_factor SET secret = ? WHERE user_id = ? AND secret = ?"),
                        (bound, user_id, sealed),
                    ).rowcount
            conn.execute(
                self._q("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"),
                (mark, str(now).encode(), now),
            )
            return changed

    def begin_two_factor(self, user_id: int, secret: str, now: int) -> None:
        """Store a new, unconfirmed secret; Conflict when two-factor is already on."""
        with self._tx() as conn:
            row = conn.execute(self._q("SELECT enabled_at FROM two_factor WHERE user_id = ?"), (user_id,)).fetchone()
            if row is not None and row[0] is not None:
                raise Conflict("two-factor sign-in is already on; turn it off first to enrol a new authenticator")
            conn.execute(self._q("DELETE FROM two_factor WHERE user_id = ?"), (user_id,))
            conn.execute(
                self._q(f"INSERT INTO two_factor ({_TWO_FACTOR}) VALUES (?, ?, ?, NULL, NULL)"), (user_id, secret, now)
            )

    def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record that the code of time step `step` was used; False when that step (or a later one)
        was already used (a replay), or two-factor is not on."""
        with self._tx() as conn:
            return use_factor(self, conn, user_id, FactorUse(step=step), 0)

    def enable_two_factor(
        self, user_id: int, secret: str, step: int, now: int, digests: Sequence[str], *, keep: str | None = None
    ) -> int | None:
        """Confirm the person's pending enrolment of `secret` (sealed, as stored: a new enrolment
        begun since the code was checked is not confirmed) with the code of time step `step`, replace their
        recovery codes with `digests`, and end their console sessions but `keep`, in one
        transaction: no fault leaves two-factor on without its recovery codes, or beside a session
        signed in with the password alone. Returns how many sessions ended; None, writing nothing,
        when no enrolment of `secret` is pending or the step was already used (a replay)."""
        with self._tx() as conn:
            enabled = conn.execute(
                self._q(
                    "UPDATE two_factor SET last_step = ?, enabled_at = ? WHERE user_id = ? AND secret = ?"
                    " AND (last_step IS NULL OR last_step < ?) AND enabled_at IS NULL"
                ),
                (step, now, user_id, secret, step),
            )
            if enabled.rowcount == 0:
                return None
            self._replace_codes(conn, user_id, digests, now)
            return end_credentials(self, conn, user_id, keep=keep).sessions

    def delete_two_factor(self, user_id: int, use: FactorUse | None, now: int) -> bool:
        """The person turns two-factor off (or drops an unconfirmed enrolment) and their recovery
        codes, spending the second factor `use` (needed when two-factor is on), in one transaction.
        Conflict, writing nothing, while an account the person belongs to requires two-factor: the
        rows of their accounts are locked first, as `set_requires_two_factor` locks its account's,
        so a requirement being set at the same moment either commits first (and this sees it) or
        waits for this (and sees it off). False, writing nothing, when `use` is missing or spent
        while two-factor is on; True when something was deleted or nothing was there."""
        with self._tx() as conn:
            self._refuse_while_required(conn, user_id)
            on = conn.execute(
                self._q("SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL"), (user_id,)
            ).fetchone()
            if on is not None and (use is None or not use_factor(self, conn, user_id, use, now)):
                return False
            self._delete_two_factor(conn, user_id)
            return True

    def _refuse_while_required(self, conn: Any, user_id: int) -> None:
        """Lock the rows of the person's accounts (in id order) and raise Conflict, naming them,
        when any of them requires two-factor sign-in."""
        rows = conn.execute(
            self._q("SELECT account_id FROM memberships WHERE user_id = ? ORDER BY account_id"), (user_id,)
        ).fetchall()
        for (account_id,) in rows:
            self._lock(conn, "accounts", account_id)
        requiring = conn.execute(
            self._q(
                "SELECT a.name FROM accounts a JOIN memberships m ON m.account_id = a.id"
                " JOIN account_policies p ON p.account_id = a.id"
                " WHERE m.user_id = ? AND p.require_two_factor <> 0 ORDER BY a.name"
            ),
            (user_id,),
        ).fetchall()
        if requiring:
            names = ", ".join(repr(r[0]) for r in requiring)
            raise Conflict(f"{names} require(s) two-factor sign-in of every member; nothing was changed")

    def reset_two_factor(self, user_id: int, now: int) -> CredentialsEnded | None:
        """Turn the person's two-factor off, drop their recovery codes, revoke their live API keys
        and end all their console sessions, in one transaction: no fault leaves a key or session
        alive that whoever holds the person's authenticator (a stolen phone) may have opened.
        None, writing nothing, when two-factor was not on or pending."""
        with self._tx() as conn:
            if not self._delete_two_factor(conn, user_id):
                return None
            return end_credentials(self, conn, user_id, revoke_keys_at=now)

    def _delete_two_factor(self, conn: Any, user_id: int) -> bool:
        deleted = conn.execute(self._q("DELETE FROM two_factor WHERE user_id = ?"), (user_id,)).rowcount
        conn.execute(self._q("DELETE FROM recovery_codes WHERE user_id = ?"), (user_id,))
        return bool(deleted)

    def replace_recovery_codes(self, user_id: int, digests: Sequence[str], now: int, use: FactorUse) -> bool:
        """Replace the person's recovery codes with `digests`, spending the second factor `use` in
        the same transaction; False, writing nothing, when `use` was spent already."""
        with self._tx() as conn:
            if not use_factor(self, conn, user_id, use, now):
                return False
            self._replace_codes(conn, user_id, digests, now)
            return True

    def _replace_codes(self, conn: Any, user_id: int, digests: Sequence[str], now: int) -> None:
        conn.execute(self._q("DELETE FROM recovery_codes WHERE user_id = ?"), (user_id,))
        for digest in digests:
            conn.execute(
                self._q(
                    "INSERT INTO recovery_codes (user_id, code_sha256, created_at, used_at) VALUES (?, ?, ?, NULL)"
                ),
                (user_id, digest, now),
            )

    def use_recovery_code(self, user_id: int, digest: str, now: int) -> bool:
        """Mark an unused recovery code used; False when it is unknown or was used before."""
        with self._tx() as conn:
            return use_factor(self, conn, user_id, FactorUse(recovery_digest=digest), now)

    def recovery_codes_left(self, user_id: int) -> int:
        rows = self._select("SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", (user_id,))
        return int(rows[0][0])

    # account policy -----------------------------------------------------------------------------
    def requires_two_factor(self, account_id: int) -> bool:
        rows = self._select("SELECT require_two_factor FROM account_policies WHERE account_id = ?", (account_id,))
        return bool(rows and rows[0][0])

    def set_requires_two_factor(self, account_id: int, required: bool, *, owner_id: int | None = None) -> bool:
        """Require (or stop requiring) two-factor of the account's members. With `owner_id` (the
        person setting it), requiring it is refused (False, nothing written) while that person has
        two-factor off. The account's row is locked first, as `delete_two_factor` locks it: a
        member turning two-factor off at the same moment either commits first (and this sees it)
        or waits for this (and is refused)."""
        with self._tx() as conn:
            self._lock(conn, "accounts", account_id)
            if required and owner_id is not None:
                on = conn.execute(
                    self._q("SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL"), (owner_id,)
                ).fetchone()
                if on is None:
                    return False
            conn.execute(self._q("DELETE FROM account_policies WHERE account_id = ?"), (account_id,))
            conn.execute(
                self._q("INSERT INTO account_policies (account_id, require_two_factor) VALUES (?, ?)"),
                (account_id, 1 if required else 0),
            )
            return True

    # sessions -----------------------------------------------------------------------------------
    def end_sessions(self, user_id: int, *, keep: str | None = None) -> int:
        """Delete the person's console sessions (all, or all but `keep`); returns how many."""
        with self._tx() as conn:
            return end_credentials(self, conn, user_id, keep=keep).sessions
