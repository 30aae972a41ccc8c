"""PostgresStore, part 5: the explorer's and dashboards' reads over event facets (the contract is
in store/base.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siemgate.model.facets import FACET_NAMES
from siemgate.model.features import Feature
from siemgate.store.pg_base import PgBase


def _facet(name: str) -> str:
    """A facet's column name, checked (it goes into SQL text)."""
    if name not in FACET_NAMES:
        raise ValueError(f"unknown facet {name!r}; facets are {', '.join(FACET_NAMES)}")
    return name


def _facet_where(filters: Mapping[str, str] | None, prefix: str = "") -> tuple[str, list[Any]]:
    clauses, params = [], []
    for name, value in (filters or {}).items():
        clauses.append(f" AND {prefix}{_facet(name)} = %s")
        params.append(value)
    return "".join(clauses), params


class PgFacets(PgBase):
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
    ) -> list[tuple[Any, ...]]:
        columns = [_facet(name) for name in group_by]
        if bucket_ns is not None:
            size = int(bucket_ns)
            columns.insert(0, f"(ts - ts % {size})")  # ts >= 0 here: the same as SQLite's (ts / n) * n
        where, params = _facet_where(filters)
        select = ", ".join([*columns, "count(*)"])
        group = ", ".join(str(i + 1) for i in range(len(columns)))
        order = "1" if bucket_ns is not None else f"{len(columns) + 1} DESC"
        sql = (
            f"SELECT {select} FROM facets WHERE account_id = %s AND feature = %s AND ts BETWEEN %s AND %s{where}"
            + (f" GROUP BY {group}" if group else "")
            + f" ORDER BY {order} LIMIT %s"
        )
        rows = self._rows(sql, (account_id, feature.code, start, end, *params, limit))
        return [tuple(int(v) if i == len(r) - 1 else v for i, v in enumerate(r)) for r in rows]

    def search_events(
        self,
        account_id: int,
        feature: Feature,
        start: int,
        end: int,
        filters: Mapping[str, str] | None,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[tuple[int, int, bytes]]:
        where, params = _facet_where(filters, "f.")
        if before is not None:
            end = min(end, before[0])
            where += " AND (f.ts < %s OR (f.ts = %s AND f.seq < %s))"
            params += [before[0], before[0], before[1]]
        sql = (
            "SELECT f.ts, f.seq, e.body FROM facets f JOIN events e ON e.account_id = f.account_id"
            " AND e.feature = f.feature AND e.ts = f.ts AND e.seq = f.seq"
            f" WHERE f.account_id = %s AND f.feature = %s AND f.ts BETWEEN %s AND %s{where}"
            " ORDER BY f.ts DESC, f.seq DESC LIMIT %s"
        )
        with self._conn("cannot search events") as conn:
            rows = (
                conn.cursor(binary=True).execute(sql, (account_id, feature.code, start, end, *params, limit)).fetchall()
            )
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
