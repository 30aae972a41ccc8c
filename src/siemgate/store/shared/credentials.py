"""SIEM token records and their use, ingest keys, token signing keys and deployment secrets, written
once for both backends (each method's docstring is its contract; the dialect is in dialect.py).

`get_token` and `token_revocation` run on every Events API request: they read plain rows by position.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from siemgate.errors import NotFound
from siemgate.model.features import Feature
from siemgate.store.errors import LIVE, IntegrityConflict
from siemgate.store.records import IngestKey, SigningKey, TokenRecord, TokenUse
from siemgate.store.shared.dialect import Bound, Ended, SharedSQL

_RECORD = (
    "id, account_id, integration_id, name, features, kid, token_sha256, created_at, expires_at, revoked_at,"
    " last_used_at, replaces, revoke_at, revoke_on_replacement_use, created_by, expiry_warned_at, expiry_recorded_at"
)
_INGEST_KEY = "id, account_id, name, features, key_sha256, prefix, created_at, revoked_at, last_used_at"


@functools.lru_cache(maxsize=64)
def _features(text: str) -> tuple[Feature, ...]:
    return tuple(Feature(f) for f in text.split(",") if f)


def features_text(features: Sequence[Feature]) -> str:
    """Features as stored: their names, comma-separated."""
    return ",".join(f.value for f in features)


def _token(row: Sequence[Any]) -> TokenRecord:
    """A TokenRecord from a row of _RECORD (by position: this runs on every request)."""
    return TokenRecord(
        row[0], row[1], row[2], row[3], _features(row[4]), row[5], row[6], row[7], row[8], row[9], row[10],
        row[11], row[12], bool(row[13]), row[14], row[15], row[16],
    )  # fmt: skip


def _ingest_key(row: Sequence[Any]) -> IngestKey:
    return IngestKey(row[0], row[1], row[2], _features(row[3]), *row[4:])


class CredentialStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    # SIEM tokens --------------------------------------------------------------------------------
    def create_token(self, record: TokenRecord, *, limit: int | None = None) -> None:
        """Raises Conflict when the id or hash is taken; with `limit`, LimitReached (nothing
        written) when the account already holds `limit` live tokens (neither revoked nor expired
        nor past a replaced token's grace period, at the record's creation).

        A replacement (`record.replaces`) is bounded apart, so that every token of an account at
        its bound can be rotated: at most `limit` live tokens not being replaced besides the one
        it replaces, and at most `limit` in a grace period."""
        now = record.created_at
        live = (
            "FROM tokens WHERE account_id = ? AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?) AND (revoke_at IS NULL OR revoke_at > ?)"
        )
        if record.replaces is None:
            counted = f"SELECT count(*) {live}"
            params: tuple[Any, ...] = (record.account_id, now, now)
        else:
            counted = (
                f"SELECT {self.dialect.greatest}("
                "coalesce(sum(CASE WHEN revoke_at IS NULL AND id <> ? THEN 1 ELSE 0 END), 0),"
                f" coalesce(sum(CASE WHEN revoke_at IS NULL THEN 0 ELSE 1 END), 0)) {live}"
            )
            params = (record.replaces, record.account_id, now, now)
        refusal = (
            "the account holds {held} live SIEM tokens, the most allowed is {limit}"
            + (" (and as many being replaced)" if record.replaces else "")
            + "; revoke tokens no SIEM uses any more to issue another"
        )
        bound = Bound("accounts", record.account_id, counted, params, limit, refusal)
        into = (
            "tokens (id, account_id, integration_id, name, features, kid, token_sha256, created_at, expires_at,"
            " replaces, created_by)"
        )
        values = (record.id, record.account_id, record.integration_id, record.name, features_text(record.features),
                  record.kid, record.token_sha256, record.created_at, record.expires_at, record.replaces,
                  record.created_by)  # fmt: skip
        ended = Ended(
            "account_id = ? AND (revoked_at IS NOT NULL OR expires_at <= ?)",
            (record.account_id, now),
            (
                "UPDATE tokens SET replaces = NULL WHERE replaces IN ({ids})",
                "DELETE FROM token_usage WHERE token_id IN ({ids})",
            ),
        )
        self._add(f"cannot record token {record.id}", into, values, bound, ended)

    def get_token(self, token_id: str) -> TokenRecord:
        """Raises NotFound."""
        return _token(self._first(f"SELECT {_RECORD} FROM tokens WHERE id = ?", (token_id,), f"token {token_id!r}"))

    def token_revocation(self, token_id: str) -> tuple[int | None, int | None]:
        """(revoked_at, revoke_at) of a token: the per-request check, kept as small as possible.

        Raises NotFound."""
        row = self._first("SELECT revoked_at, revoke_at FROM tokens WHERE id = ?", (token_id,), f"token {token_id!r}")
        return row[0], row[1]

    def list_tokens(self, account_id: int | None = None, integration_id: int | None = None) -> list[TokenRecord]:
        where, params = [], []
        for column, value in (("account_id", account_id), ("integration_id", integration_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._select(f"SELECT {_RECORD} FROM tokens{clause} ORDER BY created_at, id", params)
        return [_token(r) for r in rows]

    def due_tokens(self, now: int, warning_ns: int) -> list[TokenRecord]:
        """The tokens of live accounts with a lifecycle step due at `now` (accounts/lifecycle.py,
        run_due): not revoked, and past a scheduled revocation, or expired and not yet recorded so,
        or expiring within `warning_ns` and not yet warned; oldest first."""
        sql = (
            f"SELECT {_RECORD} FROM tokens WHERE revoked_at IS NULL AND (revoke_at <= ?"
            " OR (expires_at <= ? AND expiry_recorded_at IS NULL)"
            " OR (expires_at > ? AND expires_at <= ? AND expiry_warned_at IS NULL))"
            # EXISTS, not `account_id IN (...)`: SQLite planned the IN through tokens_by_account,
            # reading every token of every account, revoked ones included, instead of tokens_live
            f" AND EXISTS (SELECT 1 FROM accounts WHERE accounts.id = tokens.account_id AND {LIVE})"
            " ORDER BY created_at, id"
        )
        return [_token(r) for r in self._select(sql, (now, now, now, now + warning_ns))]

    def schedule_revocation(self, token_id: str, revoke_at: int | None, on_replacement_use: bool) -> None:
        """Revoke the token at `revoke_at` at the latest, or when its replacement is first used."""
        with self._tx() as conn:
            cur = conn.execute(
                self._q("UPDATE tokens SET revoke_at = ?, revoke_on_replacement_use = ? WHERE id = ?"),
                (revoke_at, int(on_replacement_use), token_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"token {token_id!r} not found")

    def mark_token(
        self, token_id: str, *, expiry_warned_at: int | None = None, expiry_recorded_at: int | None = None
    ) -> bool:
        """Claim a lifecycle audit event of the token, to be written once by whoever claims it:
        set the given time where none is set yet. True when this call set one; False when it was
        set already (another process claimed the event)."""
        claimed = False
        with self._tx() as conn:
            for column, value in (("expiry_warned_at", expiry_warned_at), ("expiry_recorded_at", expiry_recorded_at)):
                if value is not None:
                    cur = conn.execute(
                        self._q(f"UPDATE tokens SET {column} = ? WHERE id = ? AND {column} IS NULL"), (value, token_id)
                    )
                    claimed = claimed or cur.rowcount == 1
        return claimed

    def unmark_token(
        self, token_id: str, *, expiry_warned_at: int | None = None, expiry_recorded_at: int | None = None
    ) -> None:
        """Give back a claim made by `mark_token` with these times (its event could not be
        written), so that the next run writes it; a claim made since by another is left alone."""
        with self._tx() as conn:
            for column, value in (("expiry_warned_at", expiry_warned_at), ("expiry_recorded_at", expiry_recorded_at)):
                if value is not None:
                    conn.execute(
                        self._q(f"UPDATE tokens SET {column} = NULL WHERE id = ? AND {column} = ?"), (token_id, value)
                    )

    def revoke_token(self, token_id: str, now: int) -> TokenRecord:
        """Mark revoked (idempotent: the first revocation time is kept); raises NotFound."""
        with self._tx() as conn:
            conn.execute(
                self._q("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"), (now, token_id)
            )
        return self.get_token(token_id)

    def record_token_uses(self, uses: Sequence[TokenUse]) -> None:
        """Remember last use and, per feature, the last seq each token's cursor reached.

        Uses of unknown tokens are ignored; an older use never overwrites a newer one."""
        if not uses:
            return
        # One update per token and per (token, feature), the newest use each, in one order (token
        # id, feature) so that concurrent flushes cannot deadlock.
        last: dict[str, int] = {}
        positions: dict[tuple[str, int], tuple[int, int]] = {}
        for use in uses:
            last[use.token_id] = max(last.get(use.token_id, 0), use.at)
            if use.feature is not None and use.seq is not None:
                key = (use.token_id, use.feature.code)
                if key not in positions or use.at >= positions[key][1]:
                    positions[key] = (use.seq, use.at)
        greatest = self.dialect.greatest
        with self._tx() as conn:
            cur = conn.cursor()
            cur.executemany(
                self._q(f"UPDATE tokens SET last_used_at = {greatest}(coalesce(last_used_at, 0), ?) WHERE id = ?"),
                [(at, token_id) for token_id, at in sorted(last.items())],
            )
            cur.executemany(
                self._q(
                    "INSERT INTO token_usage (token_id, feature, last_seq, last_used_at)"
                    " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tokens WHERE id = ?)"
                    " ON CONFLICT (token_id, feature) DO UPDATE SET last_seq = excluded.last_seq,"
                    " last_used_at = excluded.last_used_at WHERE excluded.last_used_at >= token_usage.last_used_at"
                ),
                [(tid, code, seq, at, tid) for (tid, code), (seq, at) in sorted(positions.items())],
            )

    def token_positions(self, token_id: str) -> dict[Feature, tuple[int, int]]:
        """Per feature, (last seq the token's cursor reached, when) as recorded by record_token_uses."""
        rows = self._select("SELECT feature, last_seq, last_used_at FROM token_usage WHERE token_id = ?", (token_id,))
        return {Feature.from_code(code): (seq, at) for code, seq, at in rows}

    def live_token_kids(self, now: int) -> set[str]:
        """Signing-key ids that at least one live (unrevoked, unexpired) token was signed with."""
        rows = self._select(
            "SELECT DISTINCT kid FROM tokens WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            (now,),
        )
        return {r[0] for r in rows}

    # ingest keys --------------------------------------------------------------------------------
    def create_ingest_key(self, key: IngestKey, *, limit: int | None = None) -> None:
        """Raises Conflict when the id or hash is taken; with `limit`, LimitReached (nothing
        written) when the account already holds `limit` unrevoked ingest keys."""
        counted = "SELECT count(*) FROM ingest_keys WHERE account_id = ? AND revoked_at IS NULL"
        refusal = (
            "the account holds {held} ingest keys, the most allowed is {limit};"
            " revoke keys no producer uses any more to create another"
        )
        bound = Bound("accounts", key.account_id, counted, (key.account_id,), limit, refusal)
        into = "ingest_keys (id, account_id, name, features, key_sha256, prefix, created_at)"
        features = features_text(key.features)
        values = (key.id, key.account_id, key.name, features, key.key_sha256, key.prefix, key.created_at)
        ended = Ended("account_id = ? AND revoked_at IS NOT NULL", (key.account_id,))
        self._add(f"cannot record ingest key {key.id}", into, values, bound, ended)

    def get_ingest_key_by_hash(self, key_sha256: str) -> IngestKey:
        """Raises NotFound."""
        sql = f"SELECT {_INGEST_KEY} FROM ingest_keys WHERE key_sha256 = ?"
        return _ingest_key(self._first(sql, (key_sha256,), "ingest key"))

    def list_ingest_keys(self, account_id: int | None = None) -> list[IngestKey]:
        if account_id is None:
            rows = self._select(f"SELECT {_INGEST_KEY} FROM ingest_keys ORDER BY created_at, id")
        else:
            sql = f"SELECT {_INGEST_KEY} FROM ingest_keys WHERE account_id = ? ORDER BY created_at, id"
            rows = self._select(sql, (account_id,))
        return [_ingest_key(r) for r in rows]

    def revoke_ingest_key(self, key_id: str, now: int) -> IngestKey:
        """Raises NotFound."""
        with self._tx() as conn:
            conn.execute(
                self._q("UPDATE ingest_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"), (now, key_id)
            )
        sql = f"SELECT {_INGEST_KEY} FROM ingest_keys WHERE id = ?"
        return _ingest_key(self._first(sql, (key_id,), f"ingest key {key_id!r}"))

    def touch_ingest_keys(self, last_used: dict[str, int]) -> None:
        """Set last use times: key id -> time."""
        self._touch("ingest_keys", last_used)

    # signing keys and secrets -------------------------------------------------------------------
    def signing_keys(self) -> list[SigningKey]:
        """Every signing key, oldest first."""
        rows = self._select("SELECT kid, pem, created_at, active FROM signing_keys ORDER BY created_at, kid")
        return [SigningKey(kid, bytes(pem), created_at, bool(active)) for kid, pem, created_at, active in rows]

    def add_signing_key(self, key: SigningKey) -> None:
        """Store a key; when `key.active`, it replaces the active key in the same transaction.

        Raises Conflict when the kid exists."""
        with self._unique(f"signing key {key.kid} already exists"), self._tx() as conn:
            if key.active:
                conn.execute("UPDATE signing_keys SET active = 0 WHERE active = 1")
            conn.execute(
                self._q("INSERT INTO signing_keys (kid, pem, created_at, active) VALUES (?, ?, ?, ?)"),
                (key.kid, key.pem, key.created_at, int(key.active)),
            )

    def import_signing_keys(self, keys: Sequence[SigningKey]) -> bool:
        """Store the keys of a deployment's first start (imported from its key files, or a new one)
        in one transaction, unless the store holds a key already; whether they were stored. A start
        stopped midway stores none of them, so the next one imports them all (never a part, which
        it would then take for the whole: the active key missing, every token refused)."""
        try:
            with self._tx() as conn:
                if conn.execute("SELECT 1 FROM signing_keys LIMIT 1").fetchone() is not None:
                    return False  # another process starting at the same time stored them first
                for key in keys:
                    conn.execute(
                        self._q("INSERT INTO signing_keys (kid, pem, created_at, active) VALUES (?, ?, ?, ?)"),
                        (key.kid, key.pem, key.created_at, int(key.active)),
                    )
        except IntegrityConflict:
            return False
        return True

    def delete_signing_keys(self, kids: Iterable[str]) -> None:
        """Delete these keys (never the active one; unknown kids are ignored)."""
        with self._tx() as conn:
            conn.cursor().executemany(
                self._q("DELETE FROM signing_keys WHERE kid = ? AND active = 0"), [(k,) for k in sorted(kids)]
            )

    def secret(self, name: str, new_value: bytes, now: int) -> bytes:
        """The deployment secret `name`, created with `new_value` if it does not exist yet (atomic:
        concurrent first calls all get the value that was stored first). Read first: building the
        services asks for several, and a command that only reads must not wait for a writer."""
        found = self._select("SELECT value FROM secrets WHERE name = ?", (name,))
        if found:
            return bytes(found[0][0])
        with self._tx() as conn:
            conn.execute(
                self._q("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"),
                (name, new_value, now),
            )
            row = conn.execute(self._q("SELECT value FROM secrets WHERE name = ?"), (name,)).fetchone()
        return bytes(row[0])
