"""The facet queries (FacetStore.facet_counts, FacetStore.search_events), written once for the SQLite
and PostgreSQL backends, which differ only in their placeholder.
Their costs on a million events are in docs/benchmarks.md, "Console on a million events".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siemgate.model.facets import FACET_NAMES
from siemgate.model.features import Feature
from siemgate.model.text import fold_case
from siemgate.store.shared.dialect import Dialect, SharedSQL


def facet_column(name: str) -> str:
    """A facet's column name, checked (it goes into SQL text). Raises ValueError for unknown names."""
    if name not in FACET_NAMES:
        raise ValueError(f"unknown facet {name!r}; facets are {', '.join(FACET_NAMES)}")
    return name


# Forgiving filters (a facet name ending in "~"): case-insensitive, the person and the client app
# containing the value, the country and the IP address starting with it. The category/action and
# type/vault/object type, chosen from lists, stay exact. Like exact filters, they are checked on the
# rows of the time window (no index on the values), so they cost about the same.
FORGIVING = {"actor": "contains", "app": "contains", "country": "prefix", "ip": "prefix"}


def _like(value: str, how: str) -> str:
    escaped = fold_case(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if how == "contains" else f"{escaped}%"


def facet_where(filters: Mapping[str, str] | None, dialect: Dialect, prefix: str = "") -> tuple[str, list[Any]]:
    """` AND col = mark` for each filter (` AND fold(col) LIKE mark` for a forgiving one, named
    `facet~`: the letters A to Z ignoring case, as `Dialect.fold`), and the values in order."""
    mark = dialect.mark
    clauses, params = [], []
    for name, value in (filters or {}).items():
        if name.endswith("~") and name[:-1] in FORGIVING:
            column = facet_column(name[:-1])
            clauses.append(f" AND {dialect.fold(prefix + column)} LIKE {mark} ESCAPE '\\'")
            params.append(_like(value, FORGIVING[column]))
            continue
        clauses.append(f" AND {prefix}{facet_column(name)} = {mark}")
        params.append(value)
    return "".join(clauses), params


def count_query(
    group_by: Sequence[str], bucket_ns: int | None, filters: Mapping[str, str] | None, dialect: Dialect
) -> tuple[str, list[Any]]:
    """The facet_counts query. Its parameters are (account_id, feature code, start, end, *returned
    params, limit)."""
    columns = [facet_column(name) for name in group_by]
    if bucket_ns is not None:
        size = int(bucket_ns)
        columns.insert(0, f"(ts / {size}) * {size}")  # integer division (ts >= 0): the bucket's start
    mark = dialect.mark
    where, params = facet_where(filters, dialect)
    select = ", ".join([*columns, "count(*)"])
    positions = [i + 1 for i in range(len(columns))]
    if bucket_ns is None:  # same groups; SQLite sorts ~20% faster when kind (few values) is compared last
        positions.sort(key=lambda i: columns[i - 1] == "kind")
    group = ", ".join(map(str, positions))
    order = "1" if bucket_ns is not None else f"{len(columns) + 1} DESC"
    sql = (
        f"SELECT {select} FROM facets WHERE account_id = {mark} AND feature = {mark}"
        f" AND ts BETWEEN {mark} AND {mark}{where}"
        + (f" GROUP BY {group}" if group else "")
        + f" ORDER BY {order} LIMIT {mark}"
    )
    return sql, params


def search_query(
    stream: tuple[int, int],
    window: tuple[int, int],
    filters: Mapping[str, str] | None,
    before: tuple[int, int] | None,
    limit: int,
    dialect: Dialect,
) -> tuple[str, list[Any]]:
    """The search_events query, newest first, and its parameters.

    The page's facet rows are chosen first (newest first along the time index, stopping at `limit`)
    and only they are joined to their events: joined first, PostgreSQL hashed every event of the
    window before sorting (1.5 s for 90 days of 600,000 events). The events' feature and window are
    repeated as constants so that PostgreSQL plans only the window's day partitions (planning all
    of them took 50 ms). CROSS JOIN keeps SQLite from reading events first, whatever its statistics
    say (PostgreSQL treats it as any inner join)."""
    mark = dialect.mark
    where, extra = facet_where(filters, dialect)
    if before is not None:
        where += f" AND (ts < {mark} OR (ts = {mark} AND seq < {mark}))"
        extra += [before[0], before[0], before[1]]
    sql = (
        "SELECT f.ts, f.seq, e.body FROM (SELECT account_id, feature, ts, seq FROM facets"
        f" WHERE account_id = {mark} AND feature = {mark} AND ts BETWEEN {mark} AND {mark}{where}"
        f" ORDER BY ts DESC, seq DESC LIMIT {mark}) f CROSS JOIN events e"
        f" WHERE e.account_id = f.account_id AND e.feature = {mark} AND e.ts BETWEEN {mark} AND {mark}"
        " AND e.feature = f.feature AND e.ts = f.ts AND e.seq = f.seq ORDER BY f.ts DESC, f.seq DESC"
    )
    (account_id, code), (start, end) = stream, window
    return sql, [account_id, code, start, end, *extra, limit, code, start, end]


class FacetStore(SharedSQL):
    """An interface of the store (part of Store) and its one implementation, over the backend's
    primitives (store/shared/dialect.py)."""

    def facet_counts(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        group_by: Sequence[str],
        *,
        bucket_ns: int | None = None,
        filters: Mapping[str, str] | None = None,
        limit: int = 1000,
        seconds: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """Count events with start <= timestamp <= end (and facet == value for each filter), grouped
        by the named facets (model.facets.FACET_NAMES). Rows are (*values, count), most first; with
        `bucket_ns`, (bucket start ns, *values, count) in time order. At most `limit` rows. With
        `seconds`, stopped past it (Unavailable, store.errors.too_long)."""
        sql, params = count_query(group_by, bucket_ns, filters, self.dialect)
        bound = (account_id, feature.code, start, end, *params, limit)
        rows = self._rows(sql, bound) if seconds is None else self._rows_within(sql, bound, seconds)
        return [(*r[:-1], int(r[-1])) for r in rows]

    def search_events(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        filters: Mapping[str, str] | None,
        before: tuple[int, int] | None,
        limit: int,
        seconds: float | None = None,
    ) -> list[tuple[int, int, bytes]]:
        """Events with start <= timestamp <= end matching the facet filters, newest first, as
        (timestamp, seq, v2 JSON); `before` = (timestamp, seq) of the last row of the previous page.
        With `seconds`, stopped past it (Unavailable, store.errors.too_long)."""
        if before is not None:
            end = min(end, before[0])
        sql, params = search_query((account_id, feature.code), (start, end), filters, before, limit, self.dialect)
        rows = self._body_rows(sql, params) if seconds is None else self._rows_within(sql, params, seconds, True)
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
