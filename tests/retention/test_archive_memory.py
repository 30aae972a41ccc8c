"""Archive files are read a bounded part at a time: a damaged or hostile file of many ordinary rows
that compresses extremely well is never held in memory whole by verify, replay or the merge."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from siemgate.retention import parquet

from .helpers import NOW, peak_growth_mib

ROWS = 50_000
BODY = 2_000  # bytes of each event: ROWS of them are 100 MB read whole, a few KiB on disk


def _repetitive_parquet(path: Path) -> None:
    """A Parquet archive of ROWS copies of one event, dictionary-encoded: a few KiB on disk."""
    event = orjson.dumps({"uuid": "u", "timestamp": format_ns(NOW), "padding": "x" * BODY}).decode()
    same = pa.array([0] * ROWS, pa.int32())
    columns = [
        pa.array([NOW] * ROWS, pa.int64()),
        pa.DictionaryArray.from_arrays(same, pa.array(["u"])),
        pa.DictionaryArray.from_arrays(same, pa.array([event])),
    ]
    fields = [f for f in parquet.schema(Feature.AUDITEVENTS) if f.name in parquet.STORED]
    table = pa.Table.from_arrays(columns, names=[f.name for f in fields])
    pq.write_table(table, path, compression="zstd", store_schema=False)  # read back as strings


def _peak_growth_mib(code: str, path: Path) -> float:
    """peak_growth_mib of `code` reading `path` (bound in it as `path`); the rows read must be ROWS."""
    return peak_growth_mib(f"path = Path({str(path)!r})\n{code}\nassert rows == {ROWS}, rows")


def test_a_parquet_file_that_expands_a_lot_is_read_a_batch_at_a_time(tmp_path: Path) -> None:
    """parquet.read loaded the file's stored columns whole and made Python lists of them, so a
    file of a few KiB holding 100 MB of rows took hundreds of MiB to verify or replay. Now it is
    read BATCH_ROWS rows at a time, by `read_rows` and by `siemgate-verify archive` alike."""
    path = tmp_path / "2026-01-01.parquet"
    _repetitive_parquet(path)
    assert path.stat().st_size < 100_000
    read = "rows = sum(1 for _ in siemgate.retention.archive.read_rows(path))"
    assert _peak_growth_mib(read, path) < 40
    verify = "rows = sum(1 for _ in siemgate.tlog.archive_verify._rows(path.parent, path, {'format': 'parquet'}))"
    assert _peak_growth_mib(verify, path) < 40
