"""Parquet archive files: the stored bytes of each event, and beside them typed columns of its
fields, so a data person reaches `target_user.email` or `location.country` without JSON functions
(docs/retention.md, "Parquet columns").

Columns, in this order:
- `timestamp_ns` (int64, ns since the epoch, UTC), `uuid` (string), `event` (string: the event's
  JSON exactly as stored; replay reads this column alone, so it is byte-exact);
- `timestamp` (timestamp[ns, UTC]);
- every other v2 field of the stream's shape (model.events), top-level fields as columns, objects
  as nested structs: strings and enums as string, integers as int64, coordinates as float64,
  `session.login_time` as timestamp[ns, UTC];
- `log_index` (int64): the event's leaf in the stream's tamper-evident log (docs/integrity.md);
  null in rows archived before archives carried it.

A value that does not fit its column's type (only events kept leniently, from mirrors and
replays, can hold one) is null in that column; the `event` column has it as it was.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from typing_extensions import is_typeddict

from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, parse_ns
from siemgate.model.validation import SHAPES
from siemgate.tlog.parquet_bounds import batches

Row = tuple[int, str, bytes]  # (timestamp ns, uuid, event JSON bytes)
STORED = ("timestamp_ns", "uuid", "event")
UTC_NS = pa.timestamp("ns", tz="UTC")
TIMESTAMP_FIELDS = {"timestamp", "login_time"}
SCHEMA_KEY = b"siemgate.archive"
SCHEMA_VERSION = b"2"  # 1: the three stored columns only
# A row group written: at most this many rows, or about this many bytes of events.
ROW_GROUP_ROWS = 10_000
ROW_GROUP_BYTES = 16 * 1024 * 1024


def _arrow_type(name: str, hint: Any) -> pa.DataType:
    """The Arrow type of a TypedDict field (NotRequired, Annotated, Optional unwrapped)."""
    origin = typing.get_origin(hint)
    if origin in (typing.NotRequired, typing.Required, typing.Annotated):
        return _arrow_type(name, typing.get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if set(args) == {int, float}:
            return pa.float64()
        return _arrow_type(name, args[0])
    if origin is typing.Literal or hint is str:
        return UTC_NS if name in TIMESTAMP_FIELDS else pa.string()
    if hint is int:
        return pa.int64()
    if hint is float:
        return pa.float64()
    if isinstance(hint, type) and is_typeddict(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        return pa.struct([pa.field(n, _arrow_type(n, h)) for n, h in hints.items()])
    raise TypeError(f"no Arrow type for {name}: {hint!r}")


@cache
def schema(feature: Feature) -> pa.Schema:
    """The columns of a Parquet archive of `feature` (see the module docstring)."""
    hints = typing.get_type_hints(SHAPES[feature], include_extras=True)
    typed = [pa.field(n, _arrow_type(n, h)) for n, h in hints.items() if n != "uuid"]
    fields = [pa.field("timestamp_ns", pa.int64()), pa.field("uuid", pa.string()), pa.field("event", pa.string())]
    fields += [*typed, pa.field("log_index", pa.int64())]
    return pa.schema(fields, metadata={SCHEMA_KEY: SCHEMA_VERSION, b"siemgate.feature": feature.value.encode()})


def _conform(value: Any, kind: pa.DataType) -> Any:
    """`value` as `kind` holds it, or None when it does not fit."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            return None
        return {f.name: _conform(value.get(f.name), f.type) for f in kind}
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else None
    if pa.types.is_timestamp(kind):
        try:
            return parse_ns(value) if isinstance(value, str) else None
        except TimestampError:
            return None
    if isinstance(value, bool):
        return None
    if pa.types.is_int64(kind):
        return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None
    return float(value) if isinstance(value, int | float) else None


def _strings_only(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return all(_strings_only(f.type) for f in kind)
    return bool(pa.types.is_string(kind))


def _typed(field: pa.Field, values: list[Any]) -> pa.Array:
    """The column of `values`. Arrow converts strings (and structs of strings, ignoring other
    keys) exactly and refuses anything else, so those are tried whole first; numbers and
    timestamps (where Arrow would truncate 1.5 to 1 or take True as 1) go through _conform."""
    if _strings_only(field.type):
        try:
            return pa.array(values, field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array([_conform(v, field.type) for v in values], field.type)


class Writer:
    """Writes a Parquet archive of `feature` to the file object `out` a part at a time: rows added
    in order go out as row groups of at most ROW_GROUP_ROWS rows or about ROW_GROUP_BYTES of events,
    so a day is never held whole. `close` ends the file."""

    def __init__(self, feature: Feature, out: Any) -> None:
        self.feature = feature
        self._out = pq.ParquetWriter(out, schema(feature), compression="zstd")
        self._rows: list[Row] = []
        self._indices: list[int | None] = []
        self._bytes = 0

    def add(self, row: Row, index: int | None) -> None:
        self._rows.append(row)
        self._indices.append(index)
        self._bytes += len(row[2])
        if len(self._rows) >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._out.close()

    def _flush(self) -> None:
        if self._rows:
            self._out.write_table(_table(self._rows, self.feature, self._indices))
        self._rows, self._indices, self._bytes = [], [], 0


def write(rows: list[Row], feature: Feature, out: Any, indices: list[int | None] | None = None) -> None:
    """Write `rows` (in order) as a Parquet archive of `feature` to the file object `out`, with
    each row's log index from `indices` (None: unknown)."""
    writer = Writer(feature, out)
    for row, index in zip(rows, indices if indices is not None else [None] * len(rows), strict=True):
        writer.add(row, index)
    writer.close()


def _table(rows: list[Row], feature: Feature, indices: list[int | None]) -> pa.Table:
    """One row group's rows as a table of the archive's columns."""
    target = schema(feature)
    events = [orjson.loads(body) for _, _, body in rows]
    columns: list[pa.Array] = [
        pa.array([r[0] for r in rows], pa.int64()),
        pa.array([r[1] for r in rows], pa.string()),
        pa.array([r[2].decode() for r in rows], pa.string()),
    ]
    for field in target:
        if field.name in STORED or field.name == "log_index":
            continue
        if field.name == "timestamp":
            columns.append(pa.array([r[0] for r in rows], pa.int64()).cast(UTC_NS))
            continue
        columns.append(_typed(field, [e.get(field.name) for e in events]))
    columns.append(pa.array(indices, pa.int64()))
    return pa.Table.from_arrays(columns, schema=target)


def read(path: Path) -> Iterator[Row]:
    """The stored rows of a Parquet archive (either version): its three stored columns only, read
    a bounded batch at a time (tlog.parquet_bounds: a day file is never held in memory whole, and a
    file declaring more than the bounds is refused before it is read). Raises ValueError (and
    pyarrow's errors) when it cannot be read."""
    for batch in batches(path, list(STORED)):
        names = batch.schema.names
        if any(name not in names for name in STORED):
            raise ValueError(f"not a siemgate archive: it lacks a column of {', '.join(STORED)}")
        for ts, uuid, event in zip(*(batch.column(name).to_pylist() for name in STORED), strict=True):
            yield int(ts), str(uuid), str(event).encode()


def read_indices(path: Path) -> Iterator[int | None]:
    """The `log_index` column of a Parquet archive, row by row (all None in a file written without
    it); read as `read` reads."""
    for batch in batches(path, ["timestamp_ns", "log_index"]):
        if "log_index" in batch.schema.names:
            yield from (None if i is None else int(i) for i in batch.column("log_index").to_pylist())
        else:
            yield from (None for _ in range(batch.num_rows))
