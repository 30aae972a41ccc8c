"""The SQL text of the facet queries (Store.facet_counts, Store.search_events), shared by the SQLite
and PostgreSQL backends, which differ only in their placeholder and how they floor a timestamp."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siemgate.model.facets import FACET_NAMES


def facet_column(name: str) -> str:
    """A facet's column name, checked (it goes into SQL text). Raises ValueError for unknown names."""
    if name not in FACET_NAMES:
        raise ValueError(f"unknown facet {name!r}; facets are {', '.join(FACET_NAMES)}")
    return name


def facet_where(filters: Mapping[str, str] | None, mark: str, prefix: str = "") -> tuple[str, list[Any]]:
    """` AND col = mark` for each filter, and the values in order."""
    clauses, params = [], []
    for name, value in (filters or {}).items():
        clauses.append(f" AND {prefix}{facet_column(name)} = {mark}")
        params.append(value)
    return "".join(clauses), params


def count_query(
    group_by: Sequence[str], bucket_ns: int | None, filters: Mapping[str, str] | None, mark: str
) -> tuple[str, list[Any]]:
    """The facet_counts query. Its parameters are (account_id, feature code, start, end, *returned
    params, limit)."""
    columns = [facet_column(name) for name in group_by]
    if bucket_ns is not None:
        size = int(bucket_ns)
        columns.insert(0, f"(ts / {size}) * {size}")  # integer division (ts >= 0): the bucket's start
    where, params = facet_where(filters, mark)
    select = ", ".join([*columns, "count(*)"])
    group = ", ".join(str(i + 1) for i in range(len(columns)))
    order = "1" if bucket_ns is not None else f"{len(columns) + 1} DESC"
    sql = (
        f"SELECT {select} FROM facets WHERE account_id = {mark} AND feature = {mark}"
        f" AND ts BETWEEN {mark} AND {mark}{where}"
        + (f" GROUP BY {group}" if group else "")
        + f" ORDER BY {order} LIMIT {mark}"
    )
    return sql, params


def search_query(filters: Mapping[str, str] | None, before: tuple[int, int] | None, mark: str) -> tuple[str, list[Any]]:
    """The search_events query, newest first. Its parameters are (account_id, feature code, start,
    end, *returned params, limit)."""
    where, params = facet_where(filters, mark, "f.")
    if before is not None:
        where += f" AND (f.ts < {mark} OR (f.ts = {mark} AND f.seq < {mark}))"
        params += [before[0], before[0], before[1]]
    sql = (
        "SELECT f.ts, f.seq, e.body FROM facets f JOIN events e ON e.account_id = f.account_id"
        " AND e.feature = f.feature AND e.ts = f.ts AND e.seq = f.seq"
        f" WHERE f.account_id = {mark} AND f.feature = {mark} AND f.ts BETWEEN {mark} AND {mark}{where}"
        f" ORDER BY f.ts DESC, f.seq DESC LIMIT {mark}"
    )
    return sql, params
