"""PostgresStore, part 5: the explorer's and dashboards' reads over event facets (the contract is
in store/base.py, the SQL in store/shared/facets.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siemgate.model.features import Feature
from siemgate.store.postgres.connection import PgBase
from siemgate.store.shared import facets as facet_sql


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
        sql, params = facet_sql.count_query(group_by, bucket_ns, filters, "%s")
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
        if before is not None:
            end = min(end, before[0])
        sql, params = facet_sql.search_query(account_id, feature.code, start, end, filters, before, limit, "%s")
        with self._conn("cannot search events") as conn:
            rows = conn.cursor(binary=True).execute(sql, params).fetchall()
        return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
