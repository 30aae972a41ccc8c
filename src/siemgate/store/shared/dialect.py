"""What differs in the SQL text of the two backends, and the primitives shared SQL runs through.

SQL in `store/shared/` is written once with `?` placeholders. A backend sets `dialect` (SQLITE or
POSTGRES) and provides two primitives, which `SharedSQL` builds on:

- `_tx(what)`: one write transaction whose connection's `execute` returns a cursor (`fetchone`,
  `fetchall`, `rowcount`); a constraint violation leaves it as `IntegrityConflict` (kind unique,
  foreign_key or check), any other failure as `StoreError` saying `what` failed;
- `_rows(sql, params)`: the rows of one read, each a sequence by position.

- `_rows_within(sql, params, seconds, bodies)`: the same, stopped (and Unavailable, store.errors.
  too_long) once it has run `seconds`: the reads a tenant may make as large as its data.

A backend may also override `_body_rows`, the read of rows carrying event bodies (bytes):
PostgreSQL reads them in binary, which spares decoding each body from hex.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from siemgate.errors import Conflict, NotFound
from siemgate.store.errors import LIVE, IntegrityConflict, LimitReached


@dataclass(frozen=True, slots=True)
class Dialect:
    """The spelling of one backend's SQL where the two differ."""

    name: str
    mark: str  # the placeholder
    for_update: str  # appended to a read whose rows the transaction must lock ("" with one writer)
    skip_locked: str  # appended to for_update where rows another transaction holds are passed over
    # appended to the read of an owner's row (accounts, users) that serialises what counts its rows;
    # PostgreSQL's FOR NO KEY UPDATE, which rows referencing the owner (an alert, a membership) do
    # not wait for, nor it for them: only such serialising reads wait for each other
    for_owner: str
    # appended to the read of an account's row by a write into it (events, alert evaluation): shared
    # with other such writes, waited for by the account's deletion (which locks it FOR UPDATE first)
    for_share: str
    greatest: str  # the two-argument maximum function
    returning: bool  # INSERT ... RETURNING id (else the cursor's lastrowid)
    nocase: bool  # case-insensitive columns compare with `=` (COLLATE NOCASE), else folded with `fold`
    # `{}` with the letters A to Z in lower case and every other character as it is: SQLite's lower()
    # and NOCASE. PostgreSQL's lower() also folds other letters (É, Σ) as the database's locale says,
    # which would make two backends disagree on who is the same person (model.text.fold_case).
    fold_sql: str

    def q(self, sql: str) -> str:
        """`sql` with its `?` placeholders in this dialect."""
        return sql if self.mark == "?" else sql.replace("?", self.mark)

    def marks(self, count: int) -> str:
        """`count` placeholders, comma-separated."""
        return ", ".join([self.mark] * count)

    def same_text(self, column: str) -> str:
        """A condition: `column` equals the next parameter, ignoring case."""
        return f"{column} = ?" if self.nocase else f"{self.fold(column)} = {self.fold('?')}"

    def fold(self, expr: str) -> str:
        """`expr` with the letters A to Z in lower case (the store's one case folding)."""
        return self.fold_sql.format(expr)

    def insert_id(self, conn: Any, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT into a table keyed by `id`; the new row's id."""
        if self.returning:
            row = conn.execute(self.q(f"{sql} RETURNING id"), params).fetchone()
            return int(row[0])
        return int(conn.execute(self.q(sql), params).lastrowid)


# Ended credentials (revoked, expired) kept per owner, the newest; older ones are forgotten when
# the owner creates another, so that revoking and creating in a loop cannot grow them without bound.
KEEP_ENDED = 1000


@dataclass(frozen=True, slots=True)
class Ended:
    """An owner's ended rows of a table that a create forgets (SharedSQL._add), all but the newest
    `keep` (None: KEEP_ENDED): `where` picks them (`?` for `params`); each of `first`, SQL with
    `{ids}` for the ids' placeholders, runs before they are deleted (to release what refers to them)."""

    where: str
    params: tuple[Any, ...]
    first: tuple[str, ...] = ()
    keep: int | None = None


SQLITE = Dialect("sqlite", "?", "", "", "", "", "max", returning=False, nocase=True, fold_sql="lower({})")


@dataclass(frozen=True, slots=True)
class Bound:
    """A bound on the rows a create may add to: at most `limit` of those `counted` (a `SELECT
    count(*)` written with `?` placeholders for `params`) may be held once it is done. `owner`
    (a table, accounts or users) and `owner_id` name the row locked while counting, so that
    concurrent creates cannot all pass; `refusal` is LimitReached's text, with {held} and {limit}.
    A `limit` of None bounds nothing (the operator's own writes)."""

    owner: str
    owner_id: int
    counted: str
    params: tuple[Any, ...]
    limit: int | None
    refusal: str


POSTGRES = Dialect(
    "postgres",
    "%s",
    " FOR UPDATE",
    " SKIP LOCKED",
    " FOR NO KEY UPDATE",
    " FOR KEY SHARE",
    "greatest",
    returning=True,
    nocase=False,
    fold_sql="translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')",
)


class SharedSQL(abc.ABC):
    """The helpers every shared aggregate uses, over the backend's two primitives."""

    dialect: Dialect

    if TYPE_CHECKING:

        def _tx(self, what: str = ...) -> AbstractContextManager[Any]: ...

        def _rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]: ...

        def _rows_within(
            self, sql: str, params: Sequence[Any], seconds: float, bodies: bool = False
        ) -> Sequence[Sequence[Any]]: ...

    def _body_rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        """Rows that carry event bodies; by default as `_rows` reads them."""
        return self._rows(sql, params)

    def _q(self, sql: str) -> str:
        return self.dialect.q(sql)

    def _marks(self, count: int) -> str:
        return self.dialect.marks(count)

    def _select(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Sequence[Any]]:
        """Rows of a read written with `?` placeholders."""
        return self._rows(self.dialect.q(sql), params)

    def _first(self, sql: str, params: Sequence[Any], what: str) -> Sequence[Any]:
        """The first row of a read; NotFound saying `what` was not found when there is none."""
        rows = self._select(sql, params)
        if not rows:
            raise NotFound(f"{what} not found")
        return rows[0]

    @contextmanager
    def _unique(self, message: str) -> Iterator[None]:
        """A constraint violation inside the block becomes Conflict(message)."""
        try:
            yield
        except IntegrityConflict:
            raise Conflict(message) from None

    @contextmanager
    def _change(self, what: str) -> Iterator[Any]:
        """A write transaction in which a constraint violation is Conflict("what: why")."""
        try:
            with self._tx(what) as conn:
                yield conn
        except IntegrityConflict as exc:
            raise Conflict(f"{what}: {exc.message}") from None

    def _lock(self, conn: Any, table: str, row_id: int) -> None:
        """Lock a row of `table` (accounts, users) until the transaction ends, so that transactions
        counting what it owns run one after another (PostgreSQL; SQLite has one writer). Writes
        that only reference the row (inserting an alert or a membership of the account) neither
        wait for it nor make it wait (Dialect.for_owner)."""
        conn.execute(self._q(f"SELECT 1 FROM {table} WHERE id = ?{self.dialect.for_owner}"), (row_id,))

    def _account_exists(self, conn: Any, account_id: int) -> bool:
        """Whether the account exists, its row then shared until the transaction ends: a write
        into an account that checks this first is ordered with the account's deletion (committed
        before it and deleted with it, or refused after it), never left with no account."""
        sql = f"SELECT 1 FROM accounts WHERE id = ? AND {LIVE}{self.dialect.for_share}"
        row = conn.execute(self._q(sql), (account_id,))
        return row.fetchone() is not None

    def _within(self, conn: Any, bound: Bound | None) -> None:
        """Raise LimitReached when adding a row would pass `bound` (nothing when it, or its limit,
        is None)."""
        if bound is None or bound.limit is None:
            return
        self._lock(conn, bound.owner, bound.owner_id)
        held = int(conn.execute(self._q(bound.counted), bound.params).fetchone()[0])
        if held >= bound.limit:
            raise LimitReached(bound.refusal.format(held=held, limit=bound.limit))

    def _add(
        self, what: str, into: str, values: Sequence[Any], bound: Bound | None = None, ended: Ended | None = None
    ) -> None:
        """INSERT INTO `into` (a table and its columns) the values, in one transaction, within
        `bound`, forgetting what `ended` says; a constraint violation is Conflict("what: why"), a
        passed bound LimitReached."""
        with self._change(what) as conn:
            self._within(conn, bound)
            conn.execute(self._q(f"INSERT INTO {into} VALUES ({self._marks(len(values))})"), values)
            if ended is not None:
                self._forget(conn, into.split()[0], ended)

    def _forget(self, conn: Any, table: str, ended: Ended) -> None:
        """Delete the rows of `table` (keyed by `id`, with `created_at`) that `ended` picks, all but
        the newest `ended.keep` (or KEEP_ENDED); `ended.first` runs before each delete."""
        keep = KEEP_ENDED if ended.keep is None else ended.keep
        sql = f"SELECT id FROM {table} WHERE {ended.where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        ids = [row[0] for row in conn.execute(self._q(sql), (*ended.params, 2**62, keep)).fetchall()]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for statement in (*ended.first, f"DELETE FROM {table} WHERE id IN ({{ids}})"):
                conn.execute(self._q(statement.format(ids=self._marks(len(chunk)))), chunk)

    def _touch(self, table: str, last_used: dict[str, int]) -> None:
        """Move each row's last_used_at (id -> time) forward, never back; rows in id order, so
        concurrent calls cannot deadlock."""
        if not last_used:
            return
        greatest = self.dialect.greatest
        with self._tx() as conn:
            conn.cursor().executemany(
                self._q(f"UPDATE {table} SET last_used_at = {greatest}(coalesce(last_used_at, 0), ?) WHERE id = ?"),
                [(at, row_id) for row_id, at in sorted(last_used.items())],
            )
