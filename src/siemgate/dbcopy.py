"""`siemgate db copy`: move a whole SQLite deployment into PostgreSQL, resumably, and check it.

Everything is copied with its ids: accounts, people, memberships, integrations, token records
(with their lifecycle columns and usage), ingest keys, API keys, console sessions, signing keys
and the cursor secret (so issued tokens and outstanding cursors keep working), alert rules, state,
alerts and deliveries, retention policies, every stream's events with their seqs, in order, and
their tamper-evident logs (entries, tree hashes, state, checkpoints, recovery statements).

Resuming: plain tables are copied with INSERT ... ON CONFLICT (primary key) DO UPDATE (copying
again adds nothing, and brings rows the source changed since up to date; rows it deleted since
are deleted from the tables in PRUNED, and reported by the check in the others); events are
copied per stream in chunks of consecutive seqs, one transaction each, and a new run continues
after the highest seq already in PostgreSQL. The source must not change
while it is copied (stop the servers writing to it). At the end, row counts of every table and a
digest of every stream (seq, timestamp, uuid, body, v1 cut, in seq order) are compared, and each
copied log must rebuild the root of its newest checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from siemgate.errors import ConfigError
from siemgate.integrity.tree import check_stored_tree, stream_label
from siemgate.model.features import Feature
from siemgate.model.text import find_unstorable
from siemgate.store.postgres import PostgresStore
from siemgate.store.postgres.errors import redacted
from siemgate.store.sqlite.url import sqlite_url_path

# Tables copied as they are, parents before children. Others are skipped (they are not part of
# the store) unless both databases have them, in which case they are copied after these.
TABLES = (
    "accounts",
    "users",
    "memberships",
    "integrations",
    "tokens",
    "token_usage",
    "ingest_keys",
    "api_keys",
    "sessions",
    "signing_keys",
    "secrets",
    "stamped_uuids",
    "alert_rules",
    "alert_checkpoints",
    "alert_state",
    "alerts",
    "alert_deliveries",
    "alert_failures",
    "retention_policies",
    # the tamper-evident log: copied as they are, never recomputed (docs/integrity.md, "In the store")
    "log_entries",
    "log_hashes",
    "log_state",
    "log_checkpoints",
    "log_recoveries",
    "operations",  # the server's log of deleted accounts (docs/setup.md)
)
# Copied by their own steps, or bookkeeping of one database only.
SPECIAL = {"events", "facets", "streams", "event_buckets", "applied_migrations", "schema_migrations"}
ORDER_BY = {"tokens": "created_at, id", "alerts": "fired_at, id"}
IDENTITY = ("accounts", "users", "integrations", "operations")
# (table, key, value): rows a served database made itself; a target must hold only the source's.
# An account is the source's by its id and uuid (renamed since an earlier run of the copy, it is
# still the source's: the copy brings the new name).
OWN_ROWS = (("signing_keys", "kid", "pem"), ("secrets", "name", "value"), ("accounts", "id", "uuid"))
ROWS_PER_INSERT = 1000
# Tables whose rows the store deletes in use (a member removed, a session ended, two-factor turned
# off, a rule deleted): a row an earlier run copied that the source no longer has is deleted from
# the target, or a removed member would keep their access there.
PRUNED = {"memberships", "sessions", "two_factor", "recovery_codes", "account_policies", "alert_rules", "alert_state"}

Progress = Callable[[str, int], None]  # (what, rows just copied)


@dataclass
class CopyReport:
    tables: dict[str, int] = field(default_factory=dict)  # rows in the source (and now in the target)
    streams: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)  # (count, digest)
    resumed_streams: int = 0
    copied_events: int = 0


@dataclass(frozen=True)
class UnstorableEvent:
    """An event of the source PostgreSQL cannot hold, and the first field that says why."""

    account_id: int
    account_uuid: str
    feature: Feature
    seq: int
    uuid: str
    field: str
    problem: str

    def __str__(self) -> str:
        return (
            f"account {self.account_uuid} {self.feature.value} seq {self.seq} uuid {self.uuid!r}:"
            f" {self.field or 'the event'} {self.problem}"
        )


class Copier:
    """Copy `source` (an SQLite file) into `target` (a PostgreSQL store); see the module docstring."""

    def __init__(self, source: Path, target: PostgresStore, *, chunk: int = 5000) -> None:
        if not source.is_file():
            raise ConfigError(f"{source} does not exist: give the SQLite file of the deployment to copy")
        self.source_path = source
        self.target = target
        self.chunk = chunk
        self.src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, check_same_thread=False)
        self.skip: set[tuple[int, int, int]] = set()  # (account_id, feature, seq) left out of the copy
        self._data_version = self._source_version()

    def _source_version(self) -> int:
        """SQLite's data_version: it changes when another connection (a server) commits to the source."""
        return int(self.src.execute("PRAGMA data_version").fetchone()[0])

    def source_changed(self) -> bool:
        """Whether something else wrote to the source since this copier opened it: a server still
        running on it, whose changes since (a token revoked, a member removed) the copy may lack."""
        return self._source_version() != self._data_version

    def close(self) -> None:
        self.src.close()

    # planning -------------------------------------------------------------------------------------
    def _source_tables(self) -> list[str]:
        return [r[0] for r in self.src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def _target_columns(self, table: str) -> list[str]:
        rows = self.target._rows(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]

    def _columns(self, table: str) -> list[str]:
        theirs = set(self._target_columns(table))
        return [r[1] for r in self.src.execute(f"PRAGMA table_info({table})") if r[1] in theirs]

    def plain_tables(self) -> list[str]:
        present = set(self._source_tables())
        extra = sorted(t for t in present - set(TABLES) - SPECIAL if not t.startswith("sqlite_"))
        return [t for t in (*TABLES, *extra) if t in present and self._target_columns(t)]

    def streams(self) -> list[tuple[int, int, int, int]]:
        """(account_id, feature, head_seq, max_ts) of every stream of the source."""
        rows = self.src.execute("SELECT account_id, feature, head_seq, max_ts FROM streams ORDER BY 1, 2")
        return [(int(a), int(f), int(h), int(m)) for a, f, h, m in rows]

    def unstorable_events(self) -> list[UnstorableEvent]:
        """Events of the source that PostgreSQL cannot hold: text with the NUL character (SQLite
        took it before siemgate refused it at the door; model.text)."""
        found = []
        rows = self.src.execute(
            "SELECT e.account_id, a.uuid, e.feature, e.seq, e.uuid, e.body FROM events e"
            " JOIN accounts a ON a.id = e.account_id"
            " WHERE instr(e.body, ?) > 0 OR instr(e.uuid, char(0)) > 0 ORDER BY 1, 3, 4",
            (b"\\u0000",),
        )
        for account_id, account_uuid, code, seq, uuid, body in rows:
            where = find_unstorable({"uuid": uuid, **orjson.loads(body)})
            if where is not None:  # else an escaped backslash before "u0000": storable
                event = UnstorableEvent(account_id, account_uuid, Feature.from_code(code), seq, uuid, *where)
                found.append(event)
        return found

    def unstorable_rows(self) -> list[str]:
        """Values in the source's other tables that PostgreSQL cannot hold (text with the NUL
        character, which 0.1.0 took in names and descriptions on SQLite), each as a sentence
        naming the table, the row's key and the column. Such a row cannot be left out (others
        refer to it): it must be changed on the source."""
        found = []
        present = set(self._source_tables())
        for table in (t for t in TABLES if t in present):
            info = list(self.src.execute(f"PRAGMA table_info({table})"))
            key = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]] or ["rowid"]
            for column in (r[1] for r in info if str(r[2]).upper() == "TEXT"):
                rows = self.src.execute(
                    f"SELECT {', '.join(key)} FROM {table} WHERE instr(CAST({column} AS BLOB), x'00') > 0"
                )
                for row in rows:
                    at = ", ".join(f"{k} {v!r}" for k, v in zip(key, row, strict=True))
                    found.append(f"{table} ({at}): {column} contains the NUL character (U+0000)")
        return found

    def total_rows(self) -> int:
        """Rows the copy goes through: every table's and every event."""
        return sum(self._count(t) for t in self.plain_tables()) + self.total_events()

    def total_events(self) -> int:
        """Events the check at the end goes through (those left out with --skip-unstorable aside)."""
        return self._count("events") - len(self.skip)

    def _count(self, table: str) -> int:
        return int(self.src.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def check_target_unserved(self) -> None:
        """Refuse a target that a server already used: signing keys, a cursor secret or accounts
        that are not the source's would stay (its own active key and secret win), and every token
        and cursor of the source would then be refused. Rows copied by an earlier run of this copy
        are the source's, so a resumed copy passes. Raises ConfigError."""
        found = []
        for table, key, value in OWN_ROWS:
            theirs, mine = self._own_rows(table, key, value)
            foreign = sorted(k for k, v in theirs.items() if k not in mine or mine[k] != v)
            if foreign:
                found.append(f"{len(foreign)} {table.replace('_', ' ')} of its own")
        if found:
            raise ConfigError(
                f"the target database was already used by a siemgate server: it has {', '.join(found)}."
                " Copying into it would leave those in force, and the source's tokens and cursors would be"
                " refused: copy into a new, empty database (or schema)"
            )

    def _own_rows(self, table: str, key: str, value: str) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """key -> value of `table` in the target and in the source."""
        rows = self.target._rows(f"SELECT {key}, {value} FROM {table}")
        theirs = {r[0]: bytes(r[1]) if isinstance(r[1], memoryview | bytes) else r[1] for r in rows}
        return theirs, {r[0]: r[1] for r in self.src.execute(f"SELECT {key}, {value} FROM {table}")}

    # copying --------------------------------------------------------------------------------------
    def run(self, progress: Progress) -> CopyReport:
        report = CopyReport()
        for table in self.plain_tables():
            report.tables[table] = self._copy_table(table, progress)
        for table in reversed(self.plain_tables()):
            if table in PRUNED:
                self._prune(table)
        self._fix_identities()
        for account_id, code, head, max_ts in self.streams():
            self._copy_stream(account_id, code, head, max_ts, report, progress)
        return report

    def _copy_table(self, table: str, progress: Progress) -> int:
        """Copy every row of `table`; a row an earlier run copied is brought up to date (a token
        revoked, a role changed or a name changed on the source since are not left as they were)."""
        columns = self._columns(table)
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        order = ORDER_BY.get(table, "rowid") if self._has_rowid(table) else ORDER_BY.get(table, "1")
        key = self._primary_key(table)
        rest = [c for c in columns if c not in key]
        if key and rest:
            mine, theirs = ", ".join(f"{table}.{c}" for c in rest), ", ".join(f"excluded.{c}" for c in rest)
            changed = f"({mine}) IS DISTINCT FROM ({theirs})"
            update = f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)} WHERE {changed}"
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {update}"
        else:
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        count = 0
        rows = self.src.execute(f"SELECT {names} FROM {table} ORDER BY {order}")
        with self.target._write(f"cannot copy {table}") as conn, conn.cursor() as cur:
            while batch := rows.fetchmany(ROWS_PER_INSERT):
                cur.executemany(sql, batch)
                count += len(batch)
                progress(table, len(batch))
        return count

    def _prune(self, table: str) -> None:
        """Delete the target's rows of `table` whose primary key the source no longer holds."""
        key = self._primary_key(table)
        names = ", ".join(key)

        def keys(rows: Any) -> set[tuple[Any, ...]]:
            return {tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows}

        gone = keys(self.target._rows(f"SELECT {names} FROM {table}")) - keys(
            self.src.execute(f"SELECT {names} FROM {table}")
        )
        if gone:
            where = " AND ".join(f"{c} = %s" for c in key)
            with self.target._write(f"cannot copy {table}") as conn, conn.cursor() as cur:
                cur.executemany(f"DELETE FROM {table} WHERE {where}", sorted(gone))

    def _primary_key(self, table: str) -> list[str]:
        """The columns of the target table's primary key (empty when it has none)."""
        rows = self.target._rows(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = %s::regclass ORDER BY a.attnum",
            (table,),
        )
        return [r[0] for r in rows]

    def _has_rowid(self, table: str) -> bool:
        try:
            self.src.execute(f"SELECT rowid FROM {table} LIMIT 0")
        except sqlite3.OperationalError:
            return False
        return True

    def _fix_identities(self) -> None:
        with self.target._write("cannot set id sequences") as conn:
            for table in IDENTITY:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" greatest((SELECT max(id) FROM {table}), 1))"
                )

    def _copy_stream(
        self, account_id: int, code: int, head: int, max_ts: int, report: CopyReport, progress: Progress
    ) -> None:
        done = self.target._value(
            "SELECT max(seq) FROM events WHERE account_id = %s AND feature = %s", (account_id, code)
        )
        after = int(done or 0)
        if after:
            report.resumed_streams += 1
            copied = int(
                self.src.execute(
                    "SELECT count(*) FROM events WHERE account_id = ? AND feature = ? AND seq <= ?",
                    (account_id, code, after),
                ).fetchone()[0]
            )
            progress("events", copied)
        has_facets = "facets" in self._source_tables() and bool(self._target_columns("facets"))
        while True:
            rows = self.src.execute(
                "SELECT account_id, feature, seq, ts, max_ts, uuid, body, v1_cut FROM events"
                " WHERE account_id = ? AND feature = ? AND seq > ? ORDER BY seq LIMIT ?",
                (account_id, code, after, self.chunk),
            ).fetchall()
            if not rows:
                break
            facets = []
            if has_facets:
                facets = self.src.execute(
                    "SELECT account_id, feature, ts, seq, actor, kind, detail, country, app, ip FROM facets"
                    " WHERE account_id = ? AND feature = ? AND seq > ? AND seq <= ?",
                    (account_id, code, after, rows[-1][2]),
                ).fetchall()
            last = rows[-1][2]
            if self.skip:
                rows = [r for r in rows if (r[0], r[1], r[2]) not in self.skip]
                facets = [f for f in facets if (f[0], f[1], f[3]) not in self.skip]
            self.target.import_events(account_id, code, rows, facets)
            after = last
            report.copied_events += len(rows)
            progress("events", len(rows))
        with self.target._write("cannot copy streams") as conn:
            conn.execute(
                "INSERT INTO streams VALUES (%s, %s, %s, %s) ON CONFLICT (account_id, feature)"
                " DO UPDATE SET head_seq = excluded.head_seq, max_ts = excluded.max_ts",
                (account_id, code, head, max_ts),
            )

    # checking -------------------------------------------------------------------------------------
    def verify(self, report: CopyReport, progress: Progress) -> list[str]:
        """Problems found comparing the two databases (empty when the copy is exact)."""
        problems = []
        for table in self.plain_tables():
            want = self._count(table)
            got = int(self.target._value(f"SELECT count(*) FROM {table}"))
            report.tables[table] = want
            if got != want:
                problems.append(f"{table}: {want} rows in SQLite, {got} in PostgreSQL")
        for table, key, value in OWN_ROWS:  # what every token and cursor depends on: equal, not only as many
            target_rows, source_rows = self._own_rows(table, key, value)
            if target_rows != source_rows:
                problems.append(f"{table}: the rows differ between SQLite and PostgreSQL")
        for account_id, code, head, _ in self.streams():
            feature = Feature.from_code(code)
            label = f"stream {stream_label(self.target, account_id, feature)}"
            mine = _digest(self._source_events(account_id, code))
            theirs = _digest(self._target_events(account_id, code))
            report.streams[(account_id, code)] = mine
            progress("verify", mine[0])
            if mine != theirs:
                problems.append(
                    f"{label}: {mine[0]} events in SQLite, {theirs[0]} in"
                    f" PostgreSQL{' (same count, different content)' if mine[0] == theirs[0] else ''}"
                )
            target_head = self.target._value(
                "SELECT head_seq FROM streams WHERE account_id = %s AND feature = %s", (account_id, code)
            )
            if target_head != head:
                problems.append(f"{label}: head seq differs")
            if (log := check_stored_tree(self.target, account_id, feature)) is not None:
                problems.append(f"{label}: {log}")
        return problems

    def _source_events(self, account_id: int, code: int) -> Iterator[tuple[Any, ...]]:
        after = 0
        while rows := self.src.execute(
            "SELECT seq, ts, uuid, body, v1_cut FROM events WHERE account_id = ? AND feature = ? AND seq > ?"
            " ORDER BY seq LIMIT 10000",
            (account_id, code, after),
        ).fetchall():
            yield from (r for r in rows if (account_id, code, r[0]) not in self.skip)
            after = rows[-1][0]

    def _target_events(self, account_id: int, code: int) -> Iterator[tuple[Any, ...]]:
        after = 0
        while True:
            with self.target._conn("cannot read events") as conn:
                rows = (
                    conn.cursor(binary=True)
                    .execute(
                        "SELECT seq, ts, uuid, body, v1_cut FROM events WHERE account_id = %s AND feature = %s"
                        " AND seq > %s ORDER BY seq LIMIT 10000",
                        (account_id, code, after),
                    )
                    .fetchall()
                )
            if not rows:
                return
            yield from rows
            after = rows[-1][0]


def _digest(rows: Iterator[tuple[Any, ...]]) -> tuple[int, str]:
    """(count, SHA-256) of a stream's events in seq order."""
    h = hashlib.sha256()
    n = 0
    for seq, ts, uuid, body, cut in rows:
        n += 1
        h.update(f"{int(seq)}|{int(ts)}|{uuid}|{'' if cut is None else int(cut)}|{len(body)}|".encode())
        h.update(bytes(body))
    return n, h.hexdigest()


def sqlite_path(url: str) -> Path:
    """The SQLite file `--from` names (see `store.sqlite.url.sqlite_url_path`), which must be an
    SQLite database that holds at least one account. Raises ConfigError saying what to give."""
    path = sqlite_url_path(url, what="--from")
    if not path.is_file():
        raise ConfigError(f"--from: {path} does not exist; give the SQLite file of the deployment to copy")
    with open(path, "rb") as f:
        header = f.read(16)
    if not header:
        raise ConfigError(f"--from: {path} is empty: there is nothing to copy")
    if header != b"SQLite format 3\x00":
        raise ConfigError(f"--from: {path} is not an SQLite database")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            accounts = conn.execute("SELECT count(*) FROM accounts").fetchone()[0]
    except sqlite3.Error:
        raise ConfigError(f"--from: {path} is not a siemgate store (no accounts table)") from None
    if not accounts:
        raise ConfigError(f"--from: {path} holds no accounts: there is nothing to copy")
    return path


def check_target(url: str) -> None:
    """ConfigError unless `url` is a PostgreSQL URL (named without its password)."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--to must be a postgresql:// URL, not {redacted(url)!r}")
